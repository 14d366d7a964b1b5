//! The rules the server applies to a submitted run, and the job-level values it derives:
//! resource defaults and GPU vendor inference, run-spec validation, the container command line
//! and per-job volume names. Pure: the server passes in whatever it knows.

use std::collections::BTreeSet;

use crate::config::interpolate::{self, GroupMember};
use crate::config::profile::{ProfileParams, Retry};
use crate::config::run::{RunCommon, is_valid_resource_name};
use crate::config::values::{MountPoint, VolumeNames};
use crate::config::{Configuration, ServiceConfiguration, TaskConfiguration};
use crate::resources::gpu::vendors_of;
use crate::resources::{CpuArch, GpuSpec, ResourcesSpec, Vendor};

/// A run spec the server refuses (HTTP 400 in the API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

type Result<T> = std::result::Result<T, SpecError>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(SpecError(message.into()))
}

/// The longest `utilization_policy.time_window` the server keeps metrics for.
pub const METRICS_TTL_SECONDS: i64 = 3600;
/// The most probes a service may have.
pub const MAX_PROBES: usize = 10;
/// The longest probe timeout.
pub const MAX_PROBE_TIMEOUT: i64 = 300;

/// Fills `gpu: null` with "any or none" and infers the GPU vendor: from the names when they
/// all belong to one vendor, or NVIDIA when the default image is used.
pub fn set_gpu_defaults(resources: &mut ResourcesSpec, default_image: bool) {
    let gpu = resources
        .gpu
        .get_or_insert_with(|| GpuSpec::any_count_from(0));
    if gpu.vendor.is_some() || gpu.count.max == Some(0) {
        return;
    }
    match &gpu.name {
        None => {
            if default_image {
                gpu.vendor = Some(Vendor::Nvidia);
            }
        }
        Some(names) => {
            let mut vendors = BTreeSet::new();
            let mut all_known = true;
            for name in names {
                let found = vendors_of(name);
                all_known &= !found.is_empty();
                vendors.extend(found);
            }
            if all_known && vendors.len() == 1 {
                gpu.vendor = vendors.into_iter().next();
            }
        }
    }
}

fn uses_default_image(image: Option<&String>, docker: Option<bool>) -> bool {
    image.is_none() && docker != Some(true)
}

/// Applies the server's resource defaults to the configuration and its groups.
pub fn set_resource_defaults(config: &mut Configuration) {
    match config {
        Configuration::Service(s) => {
            let (image, docker) = (s.common.image.clone(), s.common.docker);
            set_gpu_defaults(
                &mut s.common.resources,
                uses_default_image(image.as_ref(), docker),
            );
            for g in s.groups.iter_mut().flatten() {
                let default_image =
                    uses_default_image(g.image.as_ref().or(image.as_ref()), g.docker.or(docker));
                set_gpu_defaults(&mut g.resources, default_image);
            }
        }
        Configuration::Task(t) => {
            let default_image = uses_default_image(t.common.image.as_ref(), t.common.docker);
            set_gpu_defaults(&mut t.common.resources, default_image);
            for g in t.groups.iter_mut().flatten() {
                set_gpu_defaults(&mut g.resources, default_image);
            }
        }
        Configuration::DevEnvironment(d) => {
            let default_image = uses_default_image(d.common.image.as_ref(), d.common.docker);
            set_gpu_defaults(&mut d.common.resources, default_image);
        }
        _ => {}
    }
}

/// Whether a container path can be a Docker volume target.
pub fn is_valid_docker_volume_target(path: &str) -> bool {
    path.starts_with('/') && !path.contains('\0') && (path == "/" || !path.ends_with('/'))
}

/// One set of resources to check, with the image settings that apply to it.
struct Unit<'a> {
    resources: &'a ResourcesSpec,
    default_image: bool,
    docker: bool,
}

fn units(config: &Configuration) -> (Vec<Unit<'_>>, bool) {
    match config {
        Configuration::Service(s) => match &s.groups {
            Some(groups) => (
                groups
                    .iter()
                    .map(|g| Unit {
                        resources: &g.resources,
                        default_image: uses_default_image(
                            g.image.as_ref().or(s.common.image.as_ref()),
                            g.docker.or(s.common.docker),
                        ),
                        docker: g.docker.or(s.common.docker) == Some(true),
                    })
                    .collect(),
                true,
            ),
            None => (vec![top_unit(&s.common)], false),
        },
        Configuration::Task(t) => match &t.groups {
            Some(groups) => (
                groups
                    .iter()
                    .map(|g| Unit {
                        resources: &g.resources,
                        default_image: uses_default_image(t.common.image.as_ref(), t.common.docker),
                        docker: t.common.docker == Some(true),
                    })
                    .collect(),
                true,
            ),
            None => (vec![top_unit(&t.common)], false),
        },
        Configuration::DevEnvironment(d) => (vec![top_unit(&d.common)], false),
        _ => (Vec::new(), false),
    }
}

fn top_unit(common: &RunCommon) -> Unit<'_> {
    Unit {
        resources: &common.resources,
        default_image: uses_default_image(common.image.as_ref(), common.docker),
        docker: common.docker == Some(true),
    }
}

/// Reports a rule broken by some of the units: plainly for a single unit, with a
/// `groups[0, 2]: ` prefix for groups.
fn check_units(
    units: &[Unit<'_>],
    grouped: bool,
    bad: impl Fn(&Unit<'_>) -> Option<String>,
) -> Result<()> {
    let failing: Vec<(usize, String)> = units
        .iter()
        .enumerate()
        .filter_map(|(i, u)| bad(u).map(|m| (i, m)))
        .collect();
    let Some((_, message)) = failing.first() else {
        return Ok(());
    };
    if grouped {
        let indexes: Vec<String> = failing.iter().map(|(i, _)| i.to_string()).collect();
        fail(format!("groups[{}]: {message}", indexes.join(", ")))
    } else {
        fail(message.clone())
    }
}

fn check_accelerators(config: &Configuration) -> Result<()> {
    let (units, grouped) = units(config);
    check_units(&units, grouped, |u| {
        if !u.default_image {
            return None;
        }
        let gpu = u
            .resources
            .gpu
            .as_ref()
            .filter(|g| g.count.max != Some(0))?;
        let vendor = gpu.vendor?;
        matches!(vendor, Vendor::Amd | Vendor::Intel | Vendor::Tenstorrent).then(|| {
            format!(
                "`image` must be set when the requested accelerator is not supported by the default image: ['{}']",
                vendor.as_str()
            )
        })
    })?;
    check_units(&units, grouped, |u| {
        if u.resources.cpu.arch != Some(CpuArch::Arm) {
            return None;
        }
        if u.docker {
            Some("`docker: true` is not supported on ARM CPU".into())
        } else if u.default_image {
            Some("`image` must be set when ARM CPU requested".into())
        } else {
            None
        }
    })
}

fn retry_duration(retry: Option<&Retry>) -> Option<i64> {
    match retry {
        Some(Retry::Spec { duration, .. }) => *duration,
        _ => None,
    }
}

fn retry_configured(retry: Option<&Retry>) -> bool {
    !matches!(retry, None | Some(Retry::Enabled(false)))
}

fn check_groups_refs_task(t: &TaskConfiguration) -> Result<()> {
    let sizes: Vec<i64> = match &t.groups {
        Some(groups) => groups.iter().map(|g| g.nodes).collect(),
        None => vec![t.nodes.unwrap_or(1)],
    };
    let commands = t
        .commands
        .iter()
        .chain(t.groups.iter().flatten().flat_map(|g| g.commands.iter()));
    for c in commands {
        interpolate::validate_groups_ref_member(c, GroupMember::Nodes)
            .map_err(|e| SpecError(e.0))?;
        interpolate::validate_groups_ref_bounds(c, &sizes, GroupMember::Nodes)
            .map_err(|e| SpecError(e.0))?;
    }
    Ok(())
}

fn check_groups_refs_service(s: &ServiceConfiguration) -> Result<()> {
    let groups = s.effective_groups();
    let sizes: Vec<i64> = groups.iter().map(|g| g.replicas.min.unwrap_or(0)).collect();
    for c in groups.iter().flat_map(|g| g.commands.iter()) {
        interpolate::validate_groups_ref_member(c, GroupMember::Replicas)
            .map_err(|e| SpecError(e.0))?;
        interpolate::validate_groups_ref_bounds(c, &sizes, GroupMember::Replicas)
            .map_err(|e| SpecError(e.0))?;
    }
    Ok(())
}

/// Validates a submitted run and applies the server's defaults, as the server does before it
/// plans or submits a run. `profile` is the run spec's profile (CLI `--profile`/`profiles.yml`).
pub fn validate_run_spec(
    run_name: Option<&str>,
    config: &mut Configuration,
    profile: Option<&ProfileParams>,
) -> Result<()> {
    if let Some(name) = run_name
        && !is_valid_resource_name(name)
    {
        return fail("Resource name should match regex '^[a-z][a-z0-9-]{1,40}$'");
    }
    let Some(common) = config.run_common() else {
        return Ok(());
    };
    let own = match &*config {
        Configuration::DevEnvironment(c) => &c.profile,
        Configuration::Task(c) => &c.profile,
        Configuration::Service(c) => &c.profile,
        _ => return Ok(()),
    };
    for retry in [own.retry.as_ref(), profile.and_then(|p| p.retry.as_ref())] {
        if retry_duration(retry).is_some_and(|d| d < 0) {
            return fail("retry.duration cannot be negative");
        }
    }
    for v in &common.volumes {
        let path = match v {
            MountPoint::Volume { path, .. } | MountPoint::Instance { path, .. } => path,
        };
        if !is_valid_docker_volume_target(path) {
            return fail(format!("Invalid volume mount path: {path}"));
        }
    }
    if let Some(policy) = &own.utilization_policy
        && policy.time_window > METRICS_TTL_SECONDS
    {
        return fail(format!(
            "utilization_policy.time_window cannot be longer than {METRICS_TTL_SECONDS}s"
        ));
    }
    for (_, value) in &common.env.0 {
        if value
            .as_deref()
            .is_some_and(interpolate::contains_groups_ref)
        {
            return fail("groups IP references are only supported in commands, not in `env`");
        }
    }
    match &*config {
        Configuration::Task(t) => check_groups_refs_task(t)?,
        Configuration::Service(s) => {
            check_groups_refs_service(s)?;
            if let Some(probes) = &s.probes {
                if probes.len() > MAX_PROBES {
                    return fail(format!("Cannot configure more than {MAX_PROBES} probes"));
                }
                if probes
                    .iter()
                    .any(|p| p.timeout.is_some_and(|t| t > MAX_PROBE_TIMEOUT))
                {
                    return fail(format!(
                        "Probe timeout cannot be longer than {MAX_PROBE_TIMEOUT}s"
                    ));
                }
            }
            if s.profile.schedule.is_some()
                && s.effective_groups()
                    .iter()
                    .all(|g| g.replicas.min.unwrap_or(0) == 0)
            {
                return fail("Scheduled services with autoscaling to zero are not supported");
            }
            if s.has_dynamo_router()
                && (retry_configured(s.profile.retry.as_ref())
                    || retry_configured(profile.and_then(|p| p.retry.as_ref())))
            {
                return fail(
                    "Retry cannot be configured for services with a Dynamo router replica group. Remove `retry` from the configuration and the profile.",
                );
            }
        }
        _ => {}
    }
    set_resource_defaults(config);
    check_accelerators(config)?;
    set_run_defaults(config);
    Ok(())
}

/// Values the server stores for unset properties: `priority: 0`, and `nodes: 1` for tasks
/// without node groups.
pub fn set_run_defaults(config: &mut Configuration) {
    let common = match config {
        Configuration::DevEnvironment(c) => &mut c.common,
        Configuration::Task(t) => {
            if t.groups.is_none() && t.nodes.is_none() {
                t.nodes = Some(1);
            }
            &mut t.common
        }
        Configuration::Service(s) => &mut s.common,
        _ => return,
    };
    common.priority.get_or_insert(0);
}

/// The version of the dstack base image the server uses.
pub const BASE_IMAGE_VERSION: &str = "0.15";

/// Splits a command line the way Python's `shlex.split` does (POSIX mode).
pub fn shlex_split(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return fail("No closing quotation"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => word.push(ch),
                            Some('\n') => {}
                            Some(ch) => {
                                word.push('\\');
                                word.push(ch);
                            }
                            None => return fail("No closing quotation"),
                        },
                        Some(ch) => word.push(ch),
                        None => return fail("No closing quotation"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(ch) => word.push(ch),
                    None => return fail("No escaped character"),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The shell that runs `commands`: the configured one, else bash with the base image and sh
/// with a custom image.
pub fn resolve_shell(shell: Option<&str>, custom_image: bool) -> String {
    match shell {
        Some("sh") => "/bin/sh".into(),
        Some("bash") => "/bin/bash".into(),
        Some(path) => path.into(),
        None if custom_image => "/bin/sh".into(),
        None => "/bin/bash".into(),
    }
}

/// The commands that prepare the base image's Python environment.
pub fn venv_prelude(python: &str) -> Vec<String> {
    vec![
        "eval $(echo 'export DSTACK_VENV_DIR=/dstack/venv' | sudo tee -a /dstack/profile)".into(),
        "sudo rm -rf $DSTACK_VENV_DIR".into(),
        "sudo mkdir $DSTACK_VENV_DIR".into(),
        "sudo chown $(id -u):$(id -g) $DSTACK_VENV_DIR".into(),
        format!("uv venv -q --prompt dstack -p {python} --seed $DSTACK_VENV_DIR"),
        "eval $(echo '. $DSTACK_VENV_DIR/bin/activate' | sudo tee -a /dstack/profile)".into(),
    ]
}

/// Joins commands with ` && `; each is trimmed and a trailing `&` is wrapped in `{ }`.
pub fn join_shell_commands(commands: &[String]) -> String {
    commands
        .iter()
        .map(|c| {
            let c = c.trim();
            if c.ends_with('&') {
                format!("{{ {c} }}")
            } else {
                c.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// The container command line of a task's or service's job (first group).
/// `server_python` is the Python version used when the configuration names none.
pub fn job_commands(config: &Configuration, server_python: &str) -> Result<Vec<String>> {
    let (common, commands): (&RunCommon, Vec<String>) = match config {
        Configuration::Task(t) => (
            &t.common,
            t.groups
                .as_ref()
                .and_then(|g| g.first())
                .map_or_else(|| t.commands.clone(), |g| g.commands.clone()),
        ),
        Configuration::Service(s) => (
            &s.common,
            s.effective_groups()
                .first()
                .map(|g| g.commands.clone())
                .unwrap_or_default(),
        ),
        _ => return fail("only tasks and services have commands"),
    };
    if let Some(entrypoint) = &common.entrypoint {
        let mut argv = shlex_split(entrypoint)?;
        argv.extend(commands);
        return Ok(argv);
    }
    if commands.is_empty() {
        return fail(
            "Could not determine what command to run. Set `commands`, or use an image with an entrypoint",
        );
    }
    let docker = common.docker == Some(true);
    let custom_image = common.image.is_some() && !docker;
    let shell = resolve_shell(common.shell.as_deref(), common.image.is_some());
    let mut all = if docker {
        vec!["start-dockerd".to_string()]
    } else if custom_image {
        Vec::new()
    } else {
        venv_prelude(common.python.map_or(server_python, |p| p.as_str()))
    };
    all.extend(commands);
    Ok(vec![
        shell,
        "-i".into(),
        "-c".into(),
        join_shell_commands(&all),
    ])
}

/// Resolves `${{ dstack.job_num }}` / `${{ dstack.node_rank }}` in volume names for one job;
/// network-volume names always come back as lists.
pub fn interpolate_job_volumes(volumes: &[MountPoint], job_num: u32) -> Result<Vec<MountPoint>> {
    let lookup = |ns: &str, name: &str| {
        (ns == "dstack" && matches!(name, "job_num" | "node_rank")).then(|| job_num.to_string())
    };
    volumes
        .iter()
        .map(|v| match v {
            MountPoint::Volume { name, path } => {
                let names = match name {
                    VolumeNames::One(n) => vec![n.clone()],
                    VolumeNames::Any(list) => list.clone(),
                };
                let resolved = names
                    .iter()
                    .map(|n| {
                        interpolate::interpolate_or_error(n, &lookup, &[])
                            .map_err(|e| SpecError(e.0))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(MountPoint::Volume {
                    name: VolumeNames::Any(resolved),
                    path: path.clone(),
                })
            }
            other => Ok(other.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex() {
        assert_eq!(
            shlex_split("/entrypoint.sh -v 'a b' \"c\\\"d\""),
            Ok(vec![
                "/entrypoint.sh".to_string(),
                "-v".into(),
                "a b".into(),
                "c\"d".into()
            ])
        );
        assert!(shlex_split("'open").is_err());
    }

    #[test]
    fn docker_targets() {
        assert!(is_valid_docker_volume_target("/valid/path"));
        assert!(!is_valid_docker_volume_target("relative"));
        assert!(!is_valid_docker_volume_target(""));
    }
}
