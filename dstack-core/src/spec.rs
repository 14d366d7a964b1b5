//! The rules the server applies to a submitted run, and the job-level values it derives:
//! resource defaults and GPU vendor inference, run-spec validation, the container command line
//! and per-job volume names. Pure: the server passes in whatever it knows.

use std::collections::BTreeSet;

use crate::config::interpolate::{self, GroupMember};
use crate::config::profile::{ProfileParams, Retry};
use crate::config::run::{RunCommon, is_valid_resource_name};
use crate::config::values::{MountPoint, VolumeNames};
use crate::config::{Configuration, ServiceConfiguration};
use crate::jobspec::{JobCommand, Prelude};
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
    // `if not gpu_spec.name`: an empty list of names counts as none.
    match gpu.name.as_ref().filter(|names| !names.is_empty()) {
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

/// The resources of one job kind with the image settings that apply to them.
struct Unit<'a> {
    resources: &'a ResourcesSpec,
    image: Option<&'a String>,
    docker: Option<bool>,
}

fn top_unit(c: &RunCommon) -> Unit<'_> {
    Unit {
        resources: &c.resources,
        image: c.image.as_ref(),
        docker: c.docker,
    }
}

/// What the accelerator and CPU checks look at: the replica or node groups (`true`) when the
/// configuration has them, else the top level.
fn units(config: &Configuration) -> (Vec<Unit<'_>>, bool) {
    match config {
        Configuration::Service(s) => match &s.groups {
            Some(groups) => (
                groups
                    .iter()
                    .map(|g| Unit {
                        resources: &g.resources,
                        image: g.image.as_ref().or(s.common.image.as_ref()),
                        docker: g.docker.or(s.common.docker),
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
                        image: t.common.image.as_ref(),
                        docker: t.common.docker,
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

/// `groups[0, 2]` as Python prints the list of indexes.
fn groups_prefix(indexes: &[usize]) -> String {
    let list: Vec<String> = indexes.iter().map(usize::to_string).collect();
    format!("groups[{}]", list.join(", "))
}

/// The vendors a unit asks for that the default image does not support (AMD, Intel,
/// Tenstorrent), as `_detect_gpu_vendors_requiring_image`: the vendor if set, else the vendors
/// of the names (unknown names ignored).
fn vendors_requiring_image(u: &Unit<'_>) -> BTreeSet<&'static str> {
    if u.image.is_some() || u.docker == Some(true) {
        return BTreeSet::new();
    }
    let Some(gpu) = u.resources.gpu.as_ref().filter(|g| g.count.max != Some(0)) else {
        return BTreeSet::new();
    };
    let vendors: Vec<Vendor> = match gpu.vendor {
        Some(v) => vec![v],
        None => gpu
            .name
            .iter()
            .flatten()
            .flat_map(|n| vendors_of(n))
            .collect(),
    };
    vendors
        .into_iter()
        .filter(|v| !matches!(v, Vendor::Nvidia | Vendor::Google))
        .map(Vendor::as_str)
        .collect()
}

/// `_validate_gpu_vendor_and_image` and `_validate_cpu_arch_and_image`.
fn check_accelerators(config: &Configuration) -> Result<()> {
    let (units, grouped) = units(config);
    let mut vendors = BTreeSet::new();
    let mut failing = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let found = vendors_requiring_image(u);
        if !found.is_empty() {
            vendors.extend(found);
            failing.push(i);
        }
    }
    if !vendors.is_empty() {
        let names: Vec<String> = vendors.iter().map(|v| format!("'{v}'")).collect();
        let message = format!(
            "`image` must be set when the requested accelerator is not supported by the default image: [{}]",
            names.join(", ")
        );
        return if grouped {
            fail(format!("{}: {message}", groups_prefix(&failing)))
        } else {
            fail(message)
        };
    }
    const IMAGE_MSG: &str = "`image` must be set when ARM CPU requested";
    const DOCKER_MSG: &str = "`docker: true` is not supported on ARM CPU";
    let (mut without_image, mut with_docker) = (Vec::new(), Vec::new());
    for (i, u) in units.iter().enumerate() {
        if u.resources.cpu.arch == Some(CpuArch::Arm) {
            if u.docker == Some(true) {
                with_docker.push(i);
            } else if u.image.is_none() {
                without_image.push(i);
            }
        }
    }
    if !grouped {
        return match (with_docker.is_empty(), without_image.is_empty()) {
            (false, _) => fail(DOCKER_MSG),
            (true, false) => fail(IMAGE_MSG),
            (true, true) => Ok(()),
        };
    }
    let mut errors = Vec::new();
    if !without_image.is_empty() {
        errors.push(format!("{}: {IMAGE_MSG}", groups_prefix(&without_image)));
    }
    if !with_docker.is_empty() {
        errors.push(format!("{}: {DOCKER_MSG}", groups_prefix(&with_docker)));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        fail(errors.join("\n"))
    }
}

/// The commands the server checks for groups references (`_iter_configuration_commands`): a
/// task's node-group commands (the top-level ones without groups); otherwise the top-level
/// `commands`, a dev environment's `init`, then every replica group's commands.
fn configuration_commands(config: &Configuration) -> Vec<&String> {
    match config {
        Configuration::Task(t) => match &t.groups {
            Some(groups) => groups.iter().flat_map(|g| g.commands.iter()).collect(),
            None => t.commands.iter().collect(),
        },
        Configuration::Service(s) => {
            let groups: Vec<&String> = match &s.groups {
                Some(groups) => groups.iter().flat_map(|g| g.commands.iter()).collect(),
                None => s.commands.iter().collect(),
            };
            s.commands.iter().chain(groups).collect()
        }
        Configuration::DevEnvironment(d) => d.init.iter().collect(),
        _ => Vec::new(),
    }
}

/// `_validate_groups_ip_refs`: references only in commands, well-formed, of the run type's
/// member (`nodes` for tasks, `replicas` for services) and within the groups' sizes (node
/// counts; the minimal replica counts).
fn check_groups_refs(config: &Configuration, common: &RunCommon) -> Result<()> {
    if common
        .env
        .0
        .iter()
        .any(|(_, v)| v.as_deref().is_some_and(interpolate::contains_groups_ref))
    {
        return fail("groups IP references are only supported in commands, not in `env`");
    }
    let commands = configuration_commands(config);
    let err = |e: interpolate::InterpolateError| SpecError(e.0);
    if let Configuration::Service(s) = config {
        // The original walks the top-level commands, then builds the replica groups, which
        // fails for `scaling` without `replicas`.
        for c in &s.commands {
            interpolate::validate_groups_refs(c).map_err(err)?;
        }
        implicit_group_error(s)?;
    }
    for c in &commands {
        interpolate::validate_groups_refs(c).map_err(err)?;
    }
    let (member, sizes): (GroupMember, Vec<i64>) = match config {
        Configuration::Task(t) => (
            GroupMember::Nodes,
            match &t.groups {
                Some(groups) => groups.iter().map(|g| g.nodes).collect(),
                None => vec![t.nodes.unwrap_or(1)],
            },
        ),
        Configuration::Service(s) => (
            GroupMember::Replicas,
            s.effective_groups()
                .iter()
                .map(|g| g.replicas.min.unwrap_or(0))
                .collect(),
        ),
        _ => return Ok(()),
    };
    for c in &commands {
        interpolate::validate_groups_ref_member(c, member).map_err(err)?;
    }
    for c in &commands {
        interpolate::validate_groups_ref_bounds(c, &sizes, member).map_err(err)?;
    }
    Ok(())
}

/// A service without groups is one implicit group of its `replicas` (1 when unset) and
/// `scaling`; with `scaling` but no `replicas` that group is invalid (the original parses such a
/// configuration and fails when it builds the group).
fn implicit_group_error(s: &ServiceConfiguration) -> Result<()> {
    if s.groups.is_none() && s.replicas.is_none() && s.scaling.is_some() {
        return fail("To use `scaling`, `replicas` must be set to a range.");
    }
    Ok(())
}

/// Validates a submitted run and applies the server's defaults, as the original does: the run
/// spec's own rule (`_validate_dynamo_no_retry`), then `validate_run_spec_and_set_defaults`
/// in its order. Profile parameters are read from the merged profile (the configuration's
/// values over `profile`, the run spec's profile from `--profile`/`profiles.yml`).
pub fn validate_run_spec(
    run_name: Option<&str>,
    config: &mut Configuration,
    profile: Option<&ProfileParams>,
) -> Result<()> {
    let own = match &*config {
        Configuration::DevEnvironment(c) => &c.profile,
        Configuration::Task(c) => &c.profile,
        Configuration::Service(c) => &c.profile,
        _ => return Ok(()),
    };
    let merged = own.merged(profile);
    if let Configuration::Service(s) = &*config
        && merged.retry.is_some()
    {
        implicit_group_error(s)?;
    }
    if let Configuration::Service(s) = &*config
        && s.has_dynamo_router()
        && merged.retry.is_some()
    {
        return fail(
            "Retry cannot be configured for services with a Dynamo router replica group. The router's address must remain stable for the life of the run; allowing retry would leave workers bound to a router that no longer exists. Remove `retry` from the profile/configuration and re-apply.",
        );
    }
    if let Some(name) = run_name
        && !is_valid_resource_name(name)
    {
        return fail("Resource name should match regex '^[a-z][a-z0-9-]{1,40}$'");
    }
    if let Some(Retry::Spec {
        duration: Some(d), ..
    }) = &merged.retry
        && *d < 0
    {
        return fail("retry.duration cannot be negative");
    }
    let Some(common) = config.run_common() else {
        return Ok(());
    };
    check_groups_refs(config, common)?;
    for v in &common.volumes {
        let path = match v {
            MountPoint::Volume { path, .. } | MountPoint::Instance { path, .. } => path,
        };
        if !is_valid_docker_volume_target(path) {
            return fail(format!("Invalid volume mount path: {path}"));
        }
    }
    if let Some(policy) = &merged.utilization_policy
        && policy.time_window > METRICS_TTL_SECONDS
    {
        return fail(format!(
            "Maximum utilization_policy.time_window is {METRICS_TTL_SECONDS}s"
        ));
    }
    if let Configuration::Service(s) = &*config {
        if merged.schedule.is_some()
            && s.effective_groups()
                .iter()
                .all(|g| g.replicas.min.unwrap_or(0) == 0)
        {
            return fail("Scheduled services with autoscaling to zero are not supported");
        }
        let probes = s.probes.as_deref().unwrap_or_default();
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
    set_run_defaults(config);
    set_resource_defaults(config);
    check_accelerators(config)
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

/// The shell that runs `commands` (`JobConfigurator._shell`): the configured one (`sh` and
/// `bash`, or any relative name, under `/bin`), else bash with the base image and sh with a
/// custom image.
pub fn resolve_shell(shell: Option<&str>, custom_image: bool) -> String {
    match shell {
        Some(path) if path.starts_with('/') => path.into(),
        Some(name) => format!("/bin/{name}"),
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

/// The image `DUMMY_IMAGE_NAME` names: a job with nothing to run (`:`).
pub const DUMMY_IMAGE: &str = "scratch";

/// What an image runs by default, from its registry configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `ENTRYPOINT`.
    pub entrypoint: Vec<String>,
    /// `CMD`.
    pub cmd: Vec<String>,
}

/// The container command line of a task's or service's first job, without the image's
/// registry configuration (an image without `commands` then has nothing known to run).
/// `server_python` is the Python version used when the configuration names none.
pub fn job_commands(config: &Configuration, server_python: &str) -> Result<Vec<String>> {
    job_commands_for(config, 0, server_python, None)
}

/// The settings of one group of jobs that decide its command line: a service's replica group
/// may override the image settings of the service.
struct GroupRun<'a> {
    commands: Vec<String>,
    image: Option<&'a str>,
    docker: Option<bool>,
    nvcc: Option<bool>,
    python: Option<&'a str>,
}

/// The container command line of the jobs of group `group` (a task's node group, a service's
/// replica group; `0` without groups), as the original's job configurators build it:
/// - `entrypoint`: its words, then the top-level `commands` as arguments;
/// - else the group's commands: `<shell> -i -c "<prelude> && <commands>"`, the prelude
///   starting Docker (`docker: true`), nothing (a custom image), or making the Python
///   environment of the base image;
/// - else the image `scratch`: `:`;
/// - else the image's own `ENTRYPOINT` and `CMD` (`image_config`; `None` when unknown).
///
/// Nothing to run is an error.
pub fn job_commands_for(
    config: &Configuration,
    group: usize,
    server_python: &str,
    image_config: Option<&ImageConfig>,
) -> Result<Vec<String>> {
    Ok(job_command_for(config, group, server_python, image_config)?.argv())
}

/// The command of the jobs of group `group`, structured (see [`job_commands_for`], which
/// renders it): backends render it for their environment.
pub fn job_command_for(
    config: &Configuration,
    group: usize,
    server_python: &str,
    image_config: Option<&ImageConfig>,
) -> Result<JobCommand> {
    let no_group = || SpecError(format!("the configuration has no group {group}"));
    let (common, top_commands, run): (&RunCommon, &[String], GroupRun<'_>) = match config {
        Configuration::Task(t) => {
            let commands = match &t.groups {
                Some(groups) => groups.get(group).ok_or_else(no_group)?.commands.clone(),
                None if group == 0 => t.commands.clone(),
                None => return Err(no_group()),
            };
            let run = GroupRun {
                commands,
                image: None,
                docker: None,
                nvcc: None,
                python: None,
            };
            (&t.common, &t.commands, run)
        }
        Configuration::Service(s) => {
            let (commands, image, docker, nvcc, python) = match &s.groups {
                Some(groups) => {
                    let g = groups.get(group).ok_or_else(no_group)?;
                    (
                        g.commands.clone(),
                        g.image.as_deref(),
                        g.docker,
                        g.nvcc,
                        g.python.map(|p| p.as_str()),
                    )
                }
                None if group == 0 => (s.commands.clone(), None, None, None, None),
                None => return Err(no_group()),
            };
            let run = GroupRun {
                commands,
                image,
                docker,
                nvcc,
                python,
            };
            (&s.common, &s.commands, run)
        }
        _ => return fail("only tasks and services have commands"),
    };
    let command = if let Some(entrypoint) = &common.entrypoint {
        let mut argv = shlex_split(entrypoint)?;
        argv.extend(top_commands.iter().cloned());
        JobCommand::Exec(argv)
    } else if !run.commands.is_empty() {
        let shell = match (&common.shell, run.docker, run.image) {
            (None, Some(true), _) => "/bin/bash".to_string(),
            (None, _, Some(_)) => "/bin/sh".to_string(),
            _ => resolve_shell(common.shell.as_deref(), common.image.is_some()),
        };
        let prelude = if run.docker == Some(true) || common.docker == Some(true) {
            Prelude::Dockerd
        } else if run.image.is_some() || common.image.is_some() {
            Prelude::None
        } else {
            let python = run
                .python
                .or(common.python.map(|p| p.as_str()))
                .unwrap_or(server_python);
            Prelude::PythonVenv(python.to_string())
        };
        JobCommand::Shell {
            shell,
            prelude,
            script: run.commands,
        }
    } else if image_name(common, &run) == Some(DUMMY_IMAGE) {
        JobCommand::Exec(vec![":".to_string()])
    } else {
        let image = image_config.cloned().unwrap_or_default();
        JobCommand::Exec(image.entrypoint.into_iter().chain(image.cmd).collect())
    };
    if matches!(&command, JobCommand::Exec(argv) if argv.is_empty()) {
        return fail(
            "Could not determine what command to run. Please specify either `commands` or `entrypoint` in your run configuration",
        );
    }
    Ok(command)
}

/// The custom image a group runs (`_image_name`), or `None` for dstack's own images (the
/// base image and Docker-in-Docker).
fn image_name<'a>(common: &'a RunCommon, run: &GroupRun<'a>) -> Option<&'a str> {
    if run.docker == Some(true) {
        return None;
    }
    if let Some(image) = run.image {
        return Some(image);
    }
    if run.nvcc == Some(true) || common.docker == Some(true) {
        return None;
    }
    common.image.as_deref()
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
    fn job_commands_without_and_with_the_image_config() {
        let config = crate::config::parse_str("t.yml", "type: task\nimage: debian\n")
            .expect("a task with an image parses");
        assert_eq!(
            job_commands(&config, "3.12").map_err(|e| e.0),
            Err("Could not determine what command to run. Please specify either `commands` or `entrypoint` in your run configuration".to_string())
        );
        let image = ImageConfig {
            entrypoint: vec!["/entrypoint.sh".into()],
            cmd: vec!["-f".into()],
        };
        assert_eq!(
            job_commands_for(&config, 0, "3.12", Some(&image)),
            Ok(vec!["/entrypoint.sh".to_string(), "-f".into()])
        );
        assert!(job_commands_for(&config, 1, "3.12", Some(&image)).is_err());
    }

    #[test]
    fn docker_targets() {
        assert!(is_valid_docker_volume_target("/valid/path"));
        assert!(!is_valid_docker_volume_target("relative"));
        assert!(!is_valid_docker_volume_target(""));
    }
}
