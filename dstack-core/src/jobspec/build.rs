//! [`job_specs`]: the jobs of a run from its validated configuration (the original's job
//! configurators).

use serde_json::Value;

use super::{
    AppSpec, BASE_IMAGE, BASE_IMAGE_VERSION, DEFAULT_GROUP_NAME, DEFAULT_RETRY_DURATION,
    DEFAULT_STOP_DURATION, DIND_IMAGE, EnvVars, FileArchiveMapping, JobCommand, JobSpec,
    JobSpecError, LEGACY_REPO_DIR, Prelude, Requirements,
};
use crate::config::profile::{Retry, SpotPolicy};
use crate::config::values::OffableDuration;
use crate::config::{Configuration, ProfileParams, RunCommon};
use crate::lifecycle::{RetryEvent, RetryPolicy};
use crate::resources::ResourcesSpec;

/// What [`job_specs`] needs besides the validated configuration.
#[derive(Debug, Clone)]
pub struct RunInput<'a> {
    /// The run's name.
    pub run_name: &'a str,
    /// The validated configuration, with the server's defaults applied.
    pub config: &'a Configuration,
    /// The run spec's profile (the CLI's `--profile`), overridden by the configuration.
    pub profile: Option<&'a ProfileParams>,
    /// `run_spec.repo_data`.
    pub repo_data: Option<Value>,
    /// `run_spec.repo_code_hash`.
    pub repo_code_hash: Option<String>,
    /// `run_spec.file_archives`.
    pub file_archives: Vec<FileArchiveMapping>,
    /// The Python version used when the configuration names none.
    pub default_python: &'a str,
}

/// The profile parameters a job reads, merged as the original's `merged_profile`: the
/// configuration's value when set, else the run spec's profile.
#[derive(Debug, Clone, Default)]
struct Merged {
    retry: Option<Retry>,
    max_duration: Option<OffableDuration>,
    stop_duration: Option<OffableDuration>,
    max_price: Option<f64>,
    spot_policy: Option<SpotPolicy>,
    reservation: Option<String>,
    utilization_policy: Option<Value>,
    backend_options: Option<Value>,
}

fn merge(own: &ProfileParams, profile: Option<&ProfileParams>) -> Merged {
    Merged {
        retry: own
            .retry
            .clone()
            .or_else(|| profile.and_then(|p| p.retry.clone())),
        max_duration: own
            .max_duration
            .or_else(|| profile.and_then(|p| p.max_duration)),
        stop_duration: own
            .stop_duration
            .or_else(|| profile.and_then(|p| p.stop_duration)),
        max_price: own.max_price.or_else(|| profile.and_then(|p| p.max_price)),
        spot_policy: own
            .spot_policy
            .or_else(|| profile.and_then(|p| p.spot_policy)),
        reservation: own
            .reservation
            .clone()
            .or_else(|| profile.and_then(|p| p.reservation.clone())),
        utilization_policy: own
            .utilization_policy
            .as_ref()
            .or_else(|| profile.and_then(|p| p.utilization_policy.as_ref()))
            .and_then(|u| serde_json::to_value(u).ok()),
        backend_options: own
            .backend_options
            .as_ref()
            .or_else(|| profile.and_then(|p| p.backend_options.as_ref()))
            .and_then(|b| serde_json::to_value(b).ok()),
    }
}

/// The retry policy of a merged profile (`get_retry`).
pub fn retry_policy(retry: Option<&Retry>) -> Option<RetryPolicy> {
    let all = || {
        vec![
            RetryEvent::NoCapacity,
            RetryEvent::Interruption,
            RetryEvent::Error,
        ]
    };
    match retry? {
        Retry::Enabled(false) => None,
        Retry::Enabled(true) => Some(RetryPolicy {
            on_events: all(),
            duration: DEFAULT_RETRY_DURATION,
        }),
        Retry::Spec {
            on_events,
            duration,
        } => Some(RetryPolicy {
            on_events: match on_events {
                Some(events) => events
                    .iter()
                    .filter_map(|e| RetryEvent::parse(e.as_str()).ok())
                    .collect(),
                None => all(),
            },
            duration: duration.unwrap_or(DEFAULT_RETRY_DURATION),
        }),
    }
}

/// One group of jobs: a service replica group, a task node group, or the whole run.
#[derive(Debug, Clone)]
struct Group {
    name: String,
    index: i64,
    size: i64,
    commands: Vec<String>,
    resources: ResourcesSpec,
    image: Option<String>,
    nvcc: Option<bool>,
    docker: Option<bool>,
    privileged: Option<bool>,
    spot_policy: Option<SpotPolicy>,
    reservation: Option<String>,
    ports: Vec<crate::config::values::PortMapping>,
}

fn groups(config: &Configuration) -> Result<Vec<Group>, JobSpecError> {
    let base = |name: &str, size: i64, commands: Vec<String>, common: &RunCommon| Group {
        name: name.into(),
        index: 0,
        size,
        commands,
        resources: common.resources.clone(),
        image: None,
        nvcc: None,
        docker: None,
        privileged: None,
        spot_policy: None,
        reservation: None,
        ports: Vec::new(),
    };
    Ok(match config {
        Configuration::Task(t) => match &t.groups {
            Some(gs) => gs
                .iter()
                .enumerate()
                .map(|(i, g)| Group {
                    index: i as i64,
                    resources: g.resources.clone(),
                    ports: g.ports.clone(),
                    ..base(&g.name, g.nodes, g.commands.clone(), &t.common)
                })
                .collect(),
            None => vec![Group {
                ports: t.ports.clone(),
                ..base(
                    DEFAULT_GROUP_NAME,
                    t.nodes.unwrap_or(1),
                    t.commands.clone(),
                    &t.common,
                )
            }],
        },
        Configuration::Service(s) => s
            .effective_groups()
            .into_iter()
            .enumerate()
            .map(|(i, g)| Group {
                name: g.name.clone(),
                index: i as i64,
                size: g.replicas.min.unwrap_or(0),
                commands: g.commands.clone(),
                resources: g.resources.clone(),
                image: g.image.clone(),
                nvcc: g.nvcc,
                docker: g.docker,
                privileged: g.privileged,
                spot_policy: g.spot_policy,
                reservation: g.reservation.clone(),
                ports: Vec::new(),
            })
            .collect(),
        Configuration::DevEnvironment(d) => {
            let mut commands = d.common.setup.clone();
            commands.push("echo".into());
            commands.extend(d.init.iter().cloned());
            commands.push(format!(
                "echo 'To connect via SSH, use: `ssh {}`'",
                d.common.name.as_deref().unwrap_or_default()
            ));
            commands.push("echo".into());
            commands.push("echo -n 'To exit, press Ctrl+C.'".into());
            commands.push("tail -f /dev/null".into());
            vec![Group {
                ports: d.ports.clone(),
                ..base(DEFAULT_GROUP_NAME, 1, commands, &d.common)
            }]
        }
        other => {
            return Err(JobSpecError(format!(
                "`{}` is not a run configuration",
                other.type_name()
            )));
        }
    })
}

fn run_parts(config: &Configuration) -> Option<(&RunCommon, &ProfileParams)> {
    match config {
        Configuration::Task(t) => Some((&t.common, &t.profile)),
        Configuration::Service(s) => Some((&s.common, &s.profile)),
        Configuration::DevEnvironment(d) => Some((&d.common, &d.profile)),
        _ => None,
    }
}

/// The command of a job of `group` (`JobConfigurator._commands`): `spec::job_command_for` for
/// tasks and services (the conformance-checked builder); for a dev environment, its generated
/// script in the base image's shell and prelude.
fn job_command(
    config: &Configuration,
    common: &RunCommon,
    group: &Group,
    default_python: &str,
) -> Result<JobCommand, JobSpecError> {
    match config {
        Configuration::DevEnvironment(_) => {
            let custom = common.image.is_some();
            let prelude = if common.docker == Some(true) {
                Prelude::Dockerd
            } else if custom {
                Prelude::None
            } else {
                Prelude::PythonVenv(
                    common
                        .python
                        .map_or_else(|| default_python.to_string(), |p| p.as_str().to_string()),
                )
            };
            Ok(JobCommand::Shell {
                shell: crate::spec::resolve_shell(common.shell.as_deref(), custom),
                prelude,
                script: group.commands.clone(),
            })
        }
        _ => {
            crate::spec::job_command_for(config, group.index.max(0) as usize, default_python, None)
                .map_err(|e| JobSpecError(e.0))
        }
    }
}

fn image_name(common: &RunCommon, group: &Group) -> String {
    if group.docker.or(common.docker) == Some(true) {
        return DIND_IMAGE.into();
    }
    if let Some(image) = group.image.as_ref().or(common.image.as_ref()) {
        return image.clone();
    }
    let devel = group.nvcc.or(common.nvcc) == Some(true);
    format!(
        "{BASE_IMAGE}:{BASE_IMAGE_VERSION}-{}-ubuntu24.04",
        if devel { "devel" } else { "base" }
    )
}

fn offable(value: Option<OffableDuration>, default: Option<i64>) -> Option<i64> {
    match value {
        None => default,
        Some(OffableDuration::Off) => None,
        Some(OffableDuration::Seconds(s)) => Some(s),
    }
}

/// The jobs of every replica a run starts with (replicas × nodes), in order.
pub fn job_specs(input: &RunInput<'_>) -> Result<Vec<JobSpec>, JobSpecError> {
    let groups = groups(input.config)?;
    let mut out = Vec::new();
    match input.config {
        Configuration::Task(_) => {
            let total: i64 = groups.iter().map(|g| g.size).sum();
            let mut job_num = 0;
            for g in &groups {
                for local in 0..g.size {
                    out.push(one_job(input, g, 0, job_num, total, local)?);
                    job_num += 1;
                }
            }
        }
        _ => {
            let mut replica = 0;
            for g in &groups {
                for _ in 0..g.size {
                    out.push(one_job(input, g, replica, 0, 1, 0)?);
                    replica += 1;
                }
            }
        }
    }
    Ok(out)
}

/// The job spec of the first job, for plans (also when the run would start no replica).
pub fn plan_job_spec(input: &RunInput<'_>) -> Result<JobSpec, JobSpecError> {
    let groups = groups(input.config)?;
    let first = groups
        .first()
        .ok_or_else(|| JobSpecError("the run has no jobs".into()))?;
    let total = match input.config {
        Configuration::Task(_) => groups.iter().map(|g| g.size).sum(),
        _ => 1,
    };
    one_job(input, first, 0, 0, total, 0)
}

fn one_job(
    input: &RunInput<'_>,
    group: &Group,
    replica_num: i64,
    job_num: i64,
    jobs_per_replica: i64,
    node_index: i64,
) -> Result<JobSpec, JobSpecError> {
    let (common, own) =
        run_parts(input.config).ok_or_else(|| JobSpecError("not a run configuration".into()))?;
    let merged = merge(own, input.profile);
    let service = matches!(input.config, Configuration::Service(_));
    let task = matches!(input.config, Configuration::Task(_));
    let command = job_command(input.config, common, group, input.default_python)?;
    let mut resources = group.resources.clone();
    let image = group.image.as_ref().or(common.image.as_ref());
    if resources.cpu.arch.is_none() && image.is_none() {
        resources.cpu.arch = Some(crate::resources::CpuArch::X86);
    }
    let spot_policy = group
        .spot_policy
        .or(merged.spot_policy)
        .unwrap_or(SpotPolicy::OnDemand);
    let env: Vec<(String, String)> = common
        .env
        .0
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
        .collect();
    let working_dir = common.working_dir.as_ref().map(|w| {
        if w.starts_with('/') {
            w.clone()
        } else {
            format!("{LEGACY_REPO_DIR}/{w}")
        }
    });
    let app_specs: Vec<AppSpec> = group
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| AppSpec {
            port: p.container_port,
            map_to_port: p.local_port,
            app_name: format!("app_{i}"),
            url_path: None,
            url_query_params: None,
        })
        .collect();
    let ssh_key = None;
    Ok(JobSpec {
        replica_num,
        job_num,
        job_name: format!("{}-{job_num}-{replica_num}", input.run_name),
        jobs_per_replica,
        replica_group: if service {
            group.name.clone()
        } else {
            DEFAULT_GROUP_NAME.into()
        },
        app_specs: Some(app_specs),
        user: match &common.user {
            Some(u) => Some(
                crate::config::values::UnixUser::parse(u)
                    .map_err(JobSpecError)
                    .and_then(|u| {
                        serde_json::to_value(u).map_err(|e| JobSpecError(e.to_string()))
                    })?,
            ),
            None => None,
        },
        commands: command.argv(),
        env: EnvVars(env),
        home_dir: Some(common.home_dir.clone()),
        image_name: image_name(common, group),
        privileged: group.docker.or(common.docker) == Some(true)
            || group.privileged.unwrap_or(common.privileged),
        single_branch: Some(
            common
                .single_branch
                .unwrap_or(!matches!(input.config, Configuration::DevEnvironment(_))),
        ),
        max_duration: offable(merged.max_duration, None),
        stop_duration: offable(merged.stop_duration, Some(DEFAULT_STOP_DURATION)),
        utilization_policy: merged.utilization_policy,
        registry_auth: common
            .registry_auth
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok()),
        requirements: Requirements {
            resources,
            max_price: merged.max_price,
            spot: match spot_policy {
                SpotPolicy::Auto => None,
                SpotPolicy::Spot => Some(true),
                SpotPolicy::OnDemand => Some(false),
            },
            reservation: group.reservation.clone().or(merged.reservation),
            multinode: Some(jobs_per_replica > 1),
            backend_options: merged.backend_options,
        },
        retry: retry_policy(merged.retry.as_ref()),
        volumes: Some(
            crate::spec::interpolate_job_volumes(&common.volumes, job_num.max(0) as u32)
                .map_err(|e| JobSpecError(e.0))?
                .iter()
                .filter_map(|v| serde_json::to_value(v).ok())
                .collect(),
        ),
        ssh_key,
        working_dir,
        repo_data: input.repo_data.clone(),
        repo_code_hash: input.repo_code_hash.clone(),
        repo_dir: common
            .repos
            .first()
            .map_or_else(|| LEGACY_REPO_DIR.to_string(), |r| r.path.clone()),
        repo_exists_action: common
            .repos
            .first()
            .and_then(|r| serde_json::to_value(r.if_exists).ok())
            .and_then(|v| v.as_str().map(str::to_string)),
        file_archives: input.file_archives.clone(),
        service_port: match input.config {
            Configuration::Service(s) => Some(s.port.container_port),
            _ => None,
        },
        probes: Vec::new(),
        node_group_index: if task { group.index } else { 0 },
        node_group_name: if task {
            group.name.clone()
        } else {
            DEFAULT_GROUP_NAME.into()
        },
        node_group_job_index: if task { node_index } else { 0 },
    })
}

/// The command of a job of this spec, rebuilt from the configuration (the job spec keeps only
/// the rendered argv): backends render it for their environment.
pub fn command_of(input: &RunInput<'_>, spec: &JobSpec) -> Result<JobCommand, JobSpecError> {
    let groups = groups(input.config)?;
    let (common, _) =
        run_parts(input.config).ok_or_else(|| JobSpecError("not a run configuration".into()))?;
    let group = match input.config {
        Configuration::Task(_) => groups.get(spec.node_group_index.max(0) as usize),
        _ => groups.iter().find(|g| g.name == spec.replica_group),
    }
    .ok_or_else(|| JobSpecError(format!("no group for job {}", spec.job_name)))?;
    job_command(input.config, common, group, input.default_python)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Configuration {
        let mut c = Configuration::from_json(&json).unwrap_or_else(|e| panic!("{e:?}"));
        crate::spec::validate_run_spec(Some("run"), &mut c, None).unwrap_or_else(|e| panic!("{e}"));
        c
    }

    fn input<'a>(c: &'a Configuration, profile: Option<&'a ProfileParams>) -> RunInput<'a> {
        RunInput {
            run_name: "run",
            config: c,
            profile,
            repo_data: None,
            repo_code_hash: None,
            file_archives: Vec::new(),
            default_python: "3.11",
        }
    }

    #[test]
    fn node_groups_get_their_own_commands_and_names() {
        let c = config(serde_json::json!({
            "type": "task",
            "groups": [
                {"name": "head", "nodes": 1, "commands": ["echo head"]},
                {"name": "workers", "nodes": 2, "commands": ["echo worker"]},
            ],
        }));
        let jobs = job_specs(&input(&c, None)).unwrap_or_default();
        assert_eq!(jobs.len(), 3);
        let summary: Vec<(i64, &str, i64, &str)> = jobs
            .iter()
            .map(|j| {
                (
                    j.job_num,
                    j.node_group_name.as_str(),
                    j.node_group_job_index,
                    j.job_name.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, "head", 0, "run-0-0"),
                (1, "workers", 0, "run-1-0"),
                (2, "workers", 1, "run-2-0")
            ]
        );
        for j in &jobs {
            assert_eq!(j.jobs_per_replica, 3);
            assert_eq!(j.requirements.multinode, Some(true));
            let group = j.node_group_index as usize;
            let expected =
                crate::spec::job_commands_for(&c, group, "3.11", None).unwrap_or_default();
            assert_eq!(j.commands, expected, "the conformance-checked command line");
            let script = if group == 0 {
                "echo head"
            } else {
                "echo worker"
            };
            assert!(j.commands[3].ends_with(script), "{:?}", j.commands);
            let command = command_of(&input(&c, None), j).ok();
            assert_eq!(command.map(|c| c.argv()), Some(expected));
        }
    }

    #[test]
    fn service_replicas_and_the_host_command() {
        let c = config(serde_json::json!({
            "type": "service", "port": 8000, "replicas": 2, "python": "3.12",
            "commands": ["python -m http.server 8000"],
        }));
        let jobs = job_specs(&input(&c, None)).unwrap_or_default();
        assert_eq!(
            jobs.iter()
                .map(|j| (j.replica_num, j.job_num))
                .collect::<Vec<_>>(),
            vec![(0, 0), (1, 0)]
        );
        assert_eq!(jobs[0].service_port, Some(8000));
        let command = command_of(&input(&c, None), &jobs[0]).ok();
        assert!(matches!(
            &command,
            Some(JobCommand::Shell { prelude: Prelude::PythonVenv(v), .. }) if v == "3.12"
        ));
        assert_eq!(
            command.map(|c| c.host_argv()),
            Some(vec![
                "/bin/bash".to_string(),
                "-i".into(),
                "-c".into(),
                "python -m http.server 8000".into()
            ])
        );
    }

    #[test]
    fn limits_and_retry_come_from_the_merged_profile() {
        let c = config(serde_json::json!({"type": "task", "commands": ["true"], "retry": true}));
        let profile = {
            let node = crate::config::Node::from_json(
                &serde_json::json!({"name": "p", "max_duration": "1h", "stop_duration": "off"}),
            );
            let mut cx = crate::config::decode::Cx::new();
            ProfileParams::decode_strict(&mut cx, &node).ok()
        };
        let jobs = job_specs(&input(&c, profile.as_ref())).unwrap_or_default();
        let j = &jobs[0];
        assert_eq!(j.max_duration, Some(3600));
        assert_eq!(j.stop_duration, None);
        assert_eq!(
            j.retry,
            Some(RetryPolicy {
                on_events: vec![
                    RetryEvent::NoCapacity,
                    RetryEvent::Interruption,
                    RetryEvent::Error
                ],
                duration: DEFAULT_RETRY_DURATION,
            })
        );
        let plain = job_specs(&input(&c, None)).unwrap_or_default();
        assert_eq!(plain[0].stop_duration, Some(DEFAULT_STOP_DURATION));
        // The job spec reads back as it was written (stored and read by the orchestrator).
        let text = serde_json::to_string(j).unwrap_or_default();
        let back: Option<JobSpec> = serde_json::from_str(&text).ok();
        assert_eq!(back.as_ref(), Some(j));
    }
}
