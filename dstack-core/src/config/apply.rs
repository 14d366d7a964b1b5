//! What `dstack apply` does to a parsed configuration before sending it: `-e`/`-p` overrides,
//! environment resolution and `${{ }}` interpolation. Pure: the caller passes its environment.

use super::Configuration;
use super::decode::Cx;
use super::interpolate::{self, InterpolateError};
use super::node::{Node, Value};
use super::run::RunCommon;
use super::values::{self, Env, PortMapping};

/// `dstack apply` could not prepare the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// A command-line argument is malformed.
    #[error("{0}")]
    BadArgument(String),
    /// A bare `env` entry has no value in the caller's environment.
    #[error("Environment variable {0} is not set")]
    EnvNotSet(String),
    /// A `${{ }}` reference failed.
    #[error(transparent)]
    Interpolation(#[from] InterpolateError),
    /// A rule the CLI enforces.
    #[error("{0}")]
    Invalid(String),
}

/// The `dstack apply` arguments that change a run configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyArgs {
    /// `-e KEY[=VALUE]`, in order.
    pub env: Vec<String>,
    /// `-p [LOCAL:]CONTAINER`, in order.
    pub ports: Vec<String>,
    /// Arguments after `--` (`${{ run.args }}`).
    pub run_args: Vec<String>,
}

impl ApplyArgs {
    /// Reads `-e`/`--env`, `-p`/`--port` and the run arguments from an argument list, as the
    /// original's parser does: the run arguments are the positional ones (one contiguous run,
    /// or everything after `--`).
    pub fn parse(args: &[String]) -> Result<ApplyArgs, ApplyError> {
        let mut out = ApplyArgs::default();
        let mut taken = false;
        let mut it = args.iter().peekable();
        let is_option = |a: &str| a.starts_with('-') && a != "-";
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-e" | "--env" => out.env.push(next_value(&mut it, arg)?),
                "-p" | "--port" => out.ports.push(next_value(&mut it, arg)?),
                "--" => {
                    let rest: Vec<String> = it.by_ref().cloned().collect();
                    if taken && !rest.is_empty() {
                        return Err(unrecognized(&rest));
                    }
                    out.run_args.extend(rest);
                }
                other if !is_option(other) => {
                    if taken {
                        return Err(unrecognized(std::slice::from_ref(arg)));
                    }
                    taken = true;
                    out.run_args.push(arg.clone());
                    while let Some(next) = it.next_if(|a| !is_option(a)) {
                        out.run_args.push(next.clone());
                    }
                }
                other => {
                    return Err(ApplyError::BadArgument(format!(
                        "unrecognized arguments: {other}"
                    )));
                }
            }
        }
        Ok(out)
    }
}

fn unrecognized(args: &[String]) -> ApplyError {
    ApplyError::BadArgument(format!("unrecognized arguments: {}", args.join(" ")))
}

fn next_value<'a>(
    it: &mut impl Iterator<Item = &'a String>,
    flag: &str,
) -> Result<String, ApplyError> {
    it.next()
        .cloned()
        .ok_or_else(|| ApplyError::BadArgument(format!("`{flag}` needs a value")))
}

/// Quotes arguments the way Python's `shlex.join` does.
pub fn shlex_join(args: &[String]) -> String {
    args.iter()
        .map(|a| shlex_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shlex_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// Applies the arguments and the caller's environment to a configuration, the way the CLI
/// does before submitting it.
pub fn apply(
    config: &Configuration,
    args: &ApplyArgs,
    environ: &dyn Fn(&str) -> Option<String>,
) -> Result<Configuration, ApplyError> {
    check_arguments(config, args)?;
    let mut config = config.clone();
    let Some(common) = run_common_mut(&mut config) else {
        return Ok(config);
    };
    // -e overrides and adds.
    for item in &args.env {
        let (key, value) = values::parse_env_item(item).ok_or_else(|| {
            ApplyError::BadArgument(format!("invalid environment variable `{item}`"))
        })?;
        common.env.set(&key, value);
    }
    resolve_env(&mut common.env, environ)?;
    // The order of the original's `apply_args`: `env` references in `registry_auth` and
    // probes, then ports (`-p`), then commands (top level, then groups).
    let env = common.env.clone();
    let env_lookup = move |ns: &str, name: &str| -> Option<String> {
        (ns == "env")
            .then(|| env.get(name).flatten().map(str::to_string))
            .flatten()
    };
    let with_env = |s: &str| interpolate::interpolate_or_error(s, &env_lookup, &["secrets"]);
    if let Some(auth) = &mut common.registry_auth {
        auth.username = with_env(&auth.username)?;
        auth.password = with_env(&auth.password)?;
    }
    if let Configuration::Service(s) = &mut config {
        for p in s.probes.iter_mut().flatten() {
            for h in p.headers.iter_mut().flatten() {
                h.value = with_env(&h.value)?;
            }
            if let Some(url) = p.url.as_mut().filter(|u| !u.is_empty()) {
                *url = with_env(url)?;
            }
            if let Some(body) = p.body.as_mut().filter(|b| !b.is_empty()) {
                *body = with_env(body)?;
            }
        }
    }
    let run_args = shlex_join(&args.run_args);
    let command_lookup =
        |ns: &str, name: &str| (ns == "run" && name == "args").then(|| run_args.clone());
    let interp_commands = |commands: &mut Vec<String>| -> Result<(), ApplyError> {
        for c in commands.iter_mut() {
            *c = interpolate::interpolate_or_error(c, &command_lookup, &["secrets", "groups"])?;
        }
        Ok(())
    };
    match &mut config {
        Configuration::Task(t) => {
            merge_ports(&mut t.ports, &args.ports)?;
            interp_commands(&mut t.commands)?;
            for g in t.groups.iter_mut().flatten() {
                interp_commands(&mut g.commands)?;
            }
        }
        Configuration::Service(s) => {
            interp_commands(&mut s.commands)?;
            for g in s.groups.iter_mut().flatten() {
                interp_commands(&mut g.commands)?;
            }
        }
        Configuration::DevEnvironment(d) => merge_ports(&mut d.ports, &args.ports)?,
        _ => {}
    }
    if let Some(common) = run_common_mut(&mut config)
        && let Some(dir) = &common.working_dir
        && !dir.starts_with('/')
    {
        return Err(ApplyError::Invalid("working_dir must be absolute".into()));
    }
    Ok(config)
}

/// What the original's argument parser rejects before anything is applied: a `-p` or `-e`
/// value its type function cannot read, `-p` for services and run arguments for dev
/// environments (neither is an argument of theirs).
fn check_arguments(config: &Configuration, args: &ApplyArgs) -> Result<(), ApplyError> {
    for item in &args.env {
        if values::parse_env_item(item).is_none() {
            return Err(ApplyError::BadArgument(format!(
                "argument -e/--env: invalid env_var value: {}",
                py_repr(item)
            )));
        }
    }
    for spec in &args.ports {
        let node = Node::new(Value::Str(spec.clone()));
        if values::parse_port_mapping(&mut Cx::new(), &node, spec).is_err() {
            return Err(ApplyError::BadArgument(format!(
                "argument -p/--port: invalid port_mapping value: {}",
                py_repr(spec)
            )));
        }
    }
    let unrecognized: Vec<String> = match config {
        Configuration::Service(_) => args
            .ports
            .iter()
            .flat_map(|p| ["-p".to_string(), p.clone()])
            .collect(),
        Configuration::DevEnvironment(_) => args.run_args.clone(),
        _ => Vec::new(),
    };
    if !unrecognized.is_empty() {
        return Err(ApplyError::BadArgument(format!(
            "unrecognized arguments: {}",
            unrecognized.join(" ")
        )));
    }
    Ok(())
}

/// Python's `repr` of a string.
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn run_common_mut(config: &mut Configuration) -> Option<&mut RunCommon> {
    match config {
        Configuration::DevEnvironment(c) => Some(&mut c.common),
        Configuration::Task(c) => Some(&mut c.common),
        Configuration::Service(c) => Some(&mut c.common),
        _ => None,
    }
}

/// Fills bare `KEY` entries from the caller's environment.
pub fn resolve_env(
    env: &mut Env,
    environ: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ApplyError> {
    for (key, value) in env.0.iter_mut() {
        if value.is_none() {
            *value = Some(environ(key).ok_or_else(|| ApplyError::EnvNotSet(key.clone()))?);
        }
    }
    Ok(())
}

/// Merges `-p` mappings into `ports` as the original's `_merge_ports` does (only when `-p` is
/// given): the container ports must be unique within the configuration and within the
/// arguments, a `-p` mapping replaces the configured one for its container port (in place) or
/// is appended, and the local ports of the result must be unique. A repeated port is
/// `Port <n> is already in use`.
fn merge_ports(ports: &mut Vec<PortMapping>, extra: &[String]) -> Result<(), ApplyError> {
    if extra.is_empty() {
        return Ok(());
    }
    let mut parsed = Vec::with_capacity(extra.len());
    for spec in extra {
        let node = Node::new(Value::Str(spec.clone()));
        let mut cx = Cx::new();
        let mapping = values::parse_port_mapping(&mut cx, &node, spec).map_err(|_| {
            ApplyError::BadArgument(
                cx.into_issues()
                    .first()
                    .map(|i| i.message.clone())
                    .unwrap_or_else(|| format!("invalid port `{spec}`")),
            )
        })?;
        parsed.push(mapping);
    }
    unique_ports(ports.iter().map(|p| p.container_port))?;
    unique_ports(parsed.iter().map(|p| p.container_port))?;
    let mut merged = ports.clone();
    for mapping in parsed {
        match merged
            .iter_mut()
            .find(|p| p.container_port == mapping.container_port)
        {
            Some(existing) => *existing = mapping,
            None => merged.push(mapping),
        }
    }
    unique_ports(merged.iter().filter_map(|p| p.local_port))?;
    *ports = merged;
    Ok(())
}

/// `_unique_ports_constraint`: the first port seen twice is an error.
fn unique_ports(ports: impl Iterator<Item = u16>) -> Result<(), ApplyError> {
    let mut seen = Vec::new();
    for port in ports {
        if seen.contains(&port) {
            return Err(ApplyError::Invalid(format!(
                "Port {port} is already in use"
            )));
        }
        seen.push(port);
    }
    Ok(())
}
