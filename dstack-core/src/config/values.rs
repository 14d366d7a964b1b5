//! Shared value grammars: durations, `env`, ports, mount points, `files`, `repos`, users, tags,
//! entity references and registry credentials.

use std::fmt;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use super::decode::{self, Cx, D, fields};
use super::node::{Node, Value};

// ---------------------------------------------------------------------------------------------
// Durations

/// Parses a duration in seconds: a number, Python-`int()` text, or `<n>[smhdw]`.
pub fn parse_duration(s: &str) -> Option<i64> {
    if let Some(v) = decode::py_int(s) {
        return Some(v);
    }
    let digits_end = s.bytes().position(|b| !b.is_ascii_digit())?;
    if digits_end == 0 {
        return None;
    }
    let (number, rest) = s.split_at(digits_end);
    let unit = rest.trim_start_matches(' ');
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    number.parse::<i64>().ok()?.checked_mul(scale)
}

/// A plain duration (seconds).
pub fn duration(cx: &mut Cx, n: &Node) -> D<i64> {
    match &n.value {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Float(f) => Ok(f.trunc() as i64),
        Value::Str(s) => parse_duration(s).ok_or_else(|| {
            cx.error_help(
                n,
                format!("Cannot parse the duration {s}"),
                "write seconds (`90`) or a number with one unit: `30s`, `5m`, `1h`, `2d`, `1w`"
                    .into(),
            )
        }),
        _ => Err(cx.error(n, format!("Cannot parse the duration {n}"))),
    }
}

/// A duration that may be switched off (`max_duration`, `stop_duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffableDuration {
    /// `off` / `false`: no limit.
    Off,
    /// A limit in seconds.
    Seconds(i64),
}

impl Serialize for OffableDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OffableDuration::Off => s.serialize_str("off"),
            OffableDuration::Seconds(v) => s.serialize_i64(*v),
        }
    }
}

fn is_off(n: &Node) -> Option<bool> {
    match &n.value {
        Value::Bool(b) => Some(!b),
        Value::Str(s) if s == "off" => Some(true),
        _ => None,
    }
}

/// `max_duration` / `stop_duration`: `off`/`false` → off, `true` → unset, negatives rejected.
pub fn offable_duration(cx: &mut Cx, n: &Node) -> D<Option<OffableDuration>> {
    match is_off(n) {
        Some(true) => Ok(Some(OffableDuration::Off)),
        Some(false) => Ok(None),
        None => {
            let v = duration(cx, n)?;
            if v < 0 {
                return Err(cx.error(n, "Duration cannot be negative"));
            }
            Ok(Some(OffableDuration::Seconds(v)))
        }
    }
}

/// `idle_duration` / `auto_cleanup_duration`: `off`/`false` → -1, `true` → unset; negatives
/// are kept (they all mean off).
pub fn idle_duration(cx: &mut Cx, n: &Node) -> D<Option<i64>> {
    match is_off(n) {
        Some(true) => Ok(Some(-1)),
        Some(false) => Ok(None),
        None => duration(cx, n).map(Some),
    }
}

/// `inactivity_duration`: `off`, `false` and `true` all mean unset; negatives rejected.
pub fn inactivity_duration(cx: &mut Cx, n: &Node) -> D<Option<i64>> {
    match is_off(n) {
        Some(_) => Ok(None),
        None => {
            let v = duration(cx, n)?;
            if v < 0 {
                return Err(cx.error(n, "Duration cannot be negative"));
            }
            Ok(Some(v))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// env

/// Environment variables in order. A `None` value means "take it from the caller's environment"
/// (a bare `- KEY` list item).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Env(pub Vec<(String, Option<String>)>);

impl Env {
    /// The value of `key`, if set (`Some(None)` for an inherited placeholder).
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }

    /// Sets `key`, replacing an existing entry in place.
    pub fn set(&mut self, key: &str, value: Option<String>) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Env {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Splits `KEY=VALUE` / `KEY` (`None` value); `None` when the name is not a valid variable name.
pub fn parse_env_item(item: &str) -> Option<(String, Option<String>)> {
    let (name, value) = match item.split_once('=') {
        Some((name, value)) => (name, Some(value.to_string())),
        None => (item, None),
    };
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        || value.as_deref().is_some_and(|v| v.contains('\n'))
    {
        return None;
    }
    Some((name.to_string(), value))
}

/// `env`: a list of `KEY=VALUE` / `KEY` items, or a mapping of strings.
pub fn env(cx: &mut Cx, n: &Node) -> D<Env> {
    match &n.value {
        Value::Seq(items) => {
            let mut out = Env::default();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let parsed = cx.at_index(i, |cx| {
                    let s = decode::string(cx, item)?;
                    parse_env_item(&s).ok_or_else(|| {
                        cx.error_help(
                            item,
                            format!("String should match pattern '^([a-zA-Z_][a-zA-Z0-9_]*)(=.*$|$)', got `{s}`"),
                            "write `NAME=value`, or a bare `NAME` to pass the variable from your environment".into(),
                        )
                    })
                    .map(|kv| (kv, s))
                });
                match parsed {
                    Ok(((key, value), text)) => {
                        if out.get(&key).is_some() {
                            cx.at_index(i, |cx| {
                                cx.error(item, format!("Duplicate environment variable: {text}"))
                            });
                            ok = false;
                        } else {
                            out.0.push((key, value));
                        }
                    }
                    Err(_) => ok = false,
                }
            }
            if ok { Ok(out) } else { Err(decode::Invalid) }
        }
        Value::Map(entries) => {
            let mut out = Env::default();
            let mut ok = true;
            for (k, v) in entries {
                let key = k.scalar_text().unwrap_or_default();
                match cx.at(&key, |cx| decode::string(cx, v)) {
                    Ok(value) => out.set(&key, Some(value)),
                    Err(_) => ok = false,
                }
            }
            if ok { Ok(out) } else { Err(decode::Invalid) }
        }
        _ => Err(cx.error(
            n,
            format!(
                "expected a list of `KEY=VALUE` items or a mapping, got {}",
                n.kind_name()
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Ports

/// A port forwarded from the local machine (or the service's public port) to the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortMapping {
    /// The local port; `None` picks any free one.
    pub local_port: Option<u16>,
    /// The port in the container.
    pub container_port: u16,
}

fn port_number(cx: &mut Cx, n: &Node, v: i64) -> D<u16> {
    if v < 1 {
        return Err(cx.error(n, format!("Input should be greater than 0, got {v}")));
    }
    if v > 65535 {
        return Err(cx.error(
            n,
            format!("Input should be less than or equal to 65535, got {v}"),
        ));
    }
    Ok(v as u16)
}

fn port_text(cx: &mut Cx, n: &Node, text: &str) -> D<u16> {
    match decode::py_int(text) {
        Some(v) => port_number(cx, n, v),
        None => Err(cx.error(n, format!("invalid port `{text}`"))),
    }
}

/// A `ports` item: `8080`, `"80:8080"`, `"*:8080"` or `{local_port, container_port}`.
pub fn port_mapping(cx: &mut Cx, n: &Node) -> D<PortMapping> {
    match &n.value {
        Value::Int(v) => {
            let p = port_number(cx, n, *v)?;
            Ok(PortMapping {
                local_port: Some(p),
                container_port: p,
            })
        }
        Value::Str(s) => parse_port_mapping(cx, n, s),
        Value::Map(_) => port_mapping_object(cx, n),
        _ => Err(cx.error(
            n,
            format!(
                "expected a port like `8080` or `80:8080`, got {}",
                n.kind_name()
            ),
        )),
    }
}

/// The string form of a port mapping (also used by `dstack apply -p`).
pub fn parse_port_mapping(cx: &mut Cx, n: &Node, s: &str) -> D<PortMapping> {
    let bad = |cx: &mut Cx| {
        cx.error_help(
            n,
            format!("String should match pattern '^(?:(\\d+|\\*):)?(\\d+)?$', got `{s}`"),
            "write `8080`, `80:8080` (local:container) or `*:8080` (any local port)".into(),
        )
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (local, container) = match s.split_once(':') {
        Some((l, c)) => (Some(l), c),
        None => (None, s),
    };
    if !digits(container) || local.is_some_and(|l| l != "*" && !digits(l)) {
        return Err(bad(cx));
    }
    let container_port = port_text(cx, n, container)?;
    let local_port = match local {
        None => Some(container_port),
        Some("*") => None,
        Some(l) => Some(port_text(cx, n, l)?),
    };
    Ok(PortMapping {
        local_port,
        container_port,
    })
}

fn port_mapping_object(cx: &mut Cx, n: &Node) -> D<PortMapping> {
    let (ok, f) = fields!(cx, n, [], { local_port, container_port });
    let local = decode::opt(cx, "local_port", f.local_port, |cx, n| {
        let v = decode::integer(cx, n)?;
        port_number(cx, n, v)
    });
    let container = decode::req(cx, n, "container_port", f.container_port, |cx, n| {
        let v = decode::integer(cx, n)?;
        port_number(cx, n, v)
    });
    ok?;
    Ok(PortMapping {
        local_port: local?,
        container_port: container?,
    })
}

/// A service `port`: `8000` (public 80 → 8000), `"8080:8000"` or a mapping.
pub fn service_port(cx: &mut Cx, n: &Node) -> D<PortMapping> {
    match &n.value {
        Value::Int(v) => Ok(PortMapping {
            local_port: Some(80),
            container_port: port_number(cx, n, *v)?,
        }),
        Value::Str(s) => {
            if let Some((a, b)) = s.split_once(':') {
                let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
                if digits(a) && digits(b) {
                    return Ok(PortMapping {
                        local_port: Some(port_text(cx, n, a)?),
                        container_port: port_text(cx, n, b)?,
                    });
                }
                return Err(cx.error_help(
                    n,
                    format!("String should match pattern '^[0-9]+:[0-9]+$', got `{s}`"),
                    "a service port is `8000` or `PUBLIC:CONTAINER` such as `8080:8000`".into(),
                ));
            }
            Ok(PortMapping {
                local_port: Some(80),
                container_port: port_text(cx, n, s)?,
            })
        }
        Value::Map(_) => port_mapping_object(cx, n),
        _ => Err(cx.error(
            n,
            format!("expected a port like `8000`, got {}", n.kind_name()),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Mount points

/// The volume(s) of a network-volume mount: one name, or a list meaning "any one of these".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeNames {
    /// One volume.
    One(String),
    /// Any one of several volumes.
    Any(Vec<String>),
}

impl Serialize for VolumeNames {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            VolumeNames::One(n) => s.serialize_str(n),
            VolumeNames::Any(v) => v.serialize(s),
        }
    }
}

/// A `volumes` item of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountPoint {
    /// A network volume mounted at `path`.
    Volume {
        /// The volume name(s); may use `${{ dstack.job_num }}` / `${{ dstack.node_rank }}`.
        name: VolumeNames,
        /// Absolute, normalised path in the container.
        path: String,
    },
    /// A directory of the instance mounted at `path`.
    Instance {
        /// Absolute, normalised path on the instance.
        instance_path: String,
        /// Absolute, normalised path in the container.
        path: String,
        /// Skip the mount on backends without instance volumes.
        optional: bool,
    },
}

impl Serialize for MountPoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MountPoint::Volume { name, path } => {
                let mut st = s.serialize_struct("VolumeMountPoint", 2)?;
                st.serialize_field("name", name)?;
                st.serialize_field("path", path)?;
                st.end()
            }
            MountPoint::Instance {
                instance_path,
                path,
                optional,
            } => {
                let mut st = s.serialize_struct("InstanceMountPoint", 3)?;
                st.serialize_field("instance_path", instance_path)?;
                st.serialize_field("path", path)?;
                st.serialize_field("optional", optional)?;
                st.end()
            }
        }
    }
}

/// Checks and normalises an absolute POSIX path (`/a/./b//` → `/a/b`).
pub fn normalize_mount_path(p: &str) -> Result<String, String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    if !p.starts_with('/') {
        return Err(format!("path must be absolute: {p}"));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(format!(".. are not allowed: {p}"));
    }
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    Ok(format!("/{}", parts.join("/")))
}

fn mount_path(cx: &mut Cx, n: &Node) -> D<String> {
    let s = decode::string(cx, n)?;
    normalize_mount_path(&s).map_err(|m| cx.error(n, m))
}

/// Parses `name:/path` (network volume) or `/host:/path` (instance mount).
pub fn parse_mount_point(s: &str) -> Result<MountPoint, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [source, target] = parts[..] else {
        return Err(format!("invalid mount point format: {s}"));
    };
    let path = normalize_mount_path(target)?;
    if source.contains('/') {
        Ok(MountPoint::Instance {
            instance_path: normalize_mount_path(source)?,
            path,
            optional: false,
        })
    } else {
        Ok(MountPoint::Volume {
            name: VolumeNames::One(source.to_string()),
            path,
        })
    }
}

/// A `volumes` item: a `source:path` string or a mapping.
pub fn mount_point(cx: &mut Cx, n: &Node) -> D<MountPoint> {
    match &n.value {
        Value::Str(s) => parse_mount_point(s).map_err(|m| cx.error(n, m)),
        Value::Map(_) if n.get("instance_path").is_some() => {
            let (ok, f) = fields!(cx, n, [], { instance_path, path, optional });
            let instance_path = decode::req(cx, n, "instance_path", f.instance_path, mount_path);
            let path = decode::req(cx, n, "path", f.path, mount_path);
            let optional = decode::def(cx, "optional", f.optional, || false, decode::boolean);
            ok?;
            Ok(MountPoint::Instance {
                instance_path: instance_path?,
                path: path?,
                optional: optional?,
            })
        }
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { name, path });
            let name = decode::req(cx, n, "name", f.name, |cx, n| match &n.value {
                Value::Seq(_) => decode::string_list(cx, n).map(VolumeNames::Any),
                _ => decode::string(cx, n).map(VolumeNames::One),
            });
            let path = decode::req(cx, n, "path", f.path, mount_path);
            ok?;
            Ok(MountPoint::Volume {
                name: name?,
                path: path?,
            })
        }
        _ => Err(cx.error(
            n,
            format!(
                "expected `volume:/path`, `/host/path:/path` or a mapping, got {}",
                n.kind_name()
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// files

/// A `files` item: a local file or directory and where it goes in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilePathMapping {
    /// Path on the caller's machine (relative to the configuration file).
    pub local_path: String,
    /// Path in the container (relative to the working directory).
    pub path: String,
}

fn is_windows_absolute(p: &str) -> bool {
    let b = p.as_bytes();
    (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/'))
        || p.starts_with("\\\\")
}

/// Splits `a:b:c` on colons, re-joining a leading Windows drive letter (`C:\x`).
fn split_with_drive(s: &str) -> Vec<String> {
    let mut parts: Vec<String> = s.split(':').map(str::to_string).collect();
    if parts.len() > 1
        && parts[0].len() == 1
        && parts[0].as_bytes()[0].is_ascii_alphabetic()
        && parts[1].starts_with(['\\', '/'])
    {
        let drive = parts.remove(0);
        parts[0] = format!("{drive}:{}", parts[0]);
    }
    parts
}

/// Parses `local[:container]`.
pub fn parse_file_mapping(s: &str) -> Result<FilePathMapping, String> {
    let parts = split_with_drive(s);
    let (local_path, path) = match &parts[..] {
        [one] => (one.clone(), one.clone()),
        [local, container] => (local.clone(), container.clone()),
        _ => return Err(format!("invalid file path mapping: {s}")),
    };
    if is_windows_absolute(&path) {
        return Err(format!("path must be a Unix file path: {path}"));
    }
    Ok(FilePathMapping { local_path, path })
}

/// A `files` item.
pub fn file_mapping(cx: &mut Cx, n: &Node) -> D<FilePathMapping> {
    match &n.value {
        Value::Str(s) => parse_file_mapping(s).map_err(|m| cx.error(n, m)),
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { local_path, path });
            let local_path = decode::req(cx, n, "local_path", f.local_path, decode::string);
            let path = decode::req(cx, n, "path", f.path, |cx, n| {
                let p = decode::string(cx, n)?;
                if is_windows_absolute(&p) {
                    return Err(cx.error(n, format!("path must be a Unix file path: {p}")));
                }
                Ok(p)
            });
            ok?;
            Ok(FilePathMapping {
                local_path: local_path?,
                path: path?,
            })
        }
        _ => Err(cx.error(
            n,
            format!(
                "expected `local[:container]` or a mapping, got {}",
                n.kind_name()
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// repos

/// What to do when the repo directory already exists in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoExistsAction {
    /// Fail the job.
    Error,
    /// Leave the directory as it is.
    Skip,
}

/// A `repos` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoSpec {
    /// A local directory to upload.
    pub local_path: Option<String>,
    /// A remote Git URL to clone.
    pub url: Option<String>,
    /// Branch to check out.
    pub branch: Option<String>,
    /// Commit to check out.
    pub hash: Option<String>,
    /// Where the repo goes in the container (`.` = the working directory).
    pub path: String,
    /// What to do if `path` exists.
    pub if_exists: RepoExistsAction,
}

fn check_repo_path(p: &str) -> Result<(), String> {
    if p.starts_with('~') && p != "~" && !p.starts_with("~/") {
        return Err("`~username` syntax is not supported".into());
    }
    Ok(())
}

/// Parses the string shorthand of a repo: `.`, `..:/repo`, `https://host/r.git:/repo`,
/// `git@host:r.git:/repo`.
pub fn parse_repo(s: &str) -> Result<RepoSpec, String> {
    let mut parts: Vec<String> = s.split(':').map(str::to_string).collect();
    let mut is_url = false;
    if parts.len() > 1 && (parts[0].contains('@') || parts[1].starts_with("//")) {
        let head = parts.remove(0);
        parts[0] = format!("{head}:{}", parts[0]);
        is_url = true;
    } else if parts.len() > 1
        && parts[0].len() == 1
        && parts[0].as_bytes()[0].is_ascii_alphabetic()
        && parts[1].starts_with(['\\', '/'])
    {
        let drive = parts.remove(0);
        parts[0] = format!("{drive}:{}", parts[0]);
    }
    let (source, path) = match &parts[..] {
        [one] => (one.clone(), ".".to_string()),
        [one, path] => (one.clone(), path.clone()),
        _ => return Err(format!("Invalid repo: {s}")),
    };
    check_repo_path(&path)?;
    let (local_path, url) = if is_url {
        (None, Some(source))
    } else {
        (Some(source), None)
    };
    Ok(RepoSpec {
        local_path,
        url,
        branch: None,
        hash: None,
        path,
        if_exists: RepoExistsAction::Error,
    })
}

/// A `repos` item.
pub fn repo(cx: &mut Cx, n: &Node) -> D<RepoSpec> {
    match &n.value {
        Value::Str(s) => parse_repo(s).map_err(|m| cx.error(n, m)),
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { local_path, url, branch, hash, path, if_exists });
            let local_path = decode::opt(cx, "local_path", f.local_path, decode::string);
            let url = decode::opt(cx, "url", f.url, decode::string);
            let branch = decode::opt(cx, "branch", f.branch, decode::string);
            let hash = decode::opt(cx, "hash", f.hash, decode::string);
            let path = decode::def(
                cx,
                "path",
                f.path,
                || ".".to_string(),
                |cx, n| {
                    let p = decode::string(cx, n)?;
                    check_repo_path(&p).map_err(|m| cx.error(n, m))?;
                    Ok(p)
                },
            );
            let if_exists = decode::def(
                cx,
                "if_exists",
                f.if_exists,
                || RepoExistsAction::Error,
                |cx, n| {
                    decode::one_of(
                        cx,
                        n,
                        &[
                            ("error", RepoExistsAction::Error),
                            ("skip", RepoExistsAction::Skip),
                        ],
                    )
                },
            );
            ok?;
            let (local_path, url) = (local_path?, url?);
            match (&local_path, &url) {
                (Some(_), Some(_)) => {
                    return Err(cx.error(n, "`local_path` and `url` are mutually exclusive"));
                }
                (None, None) => {
                    return Err(cx.error(n, "Either `local_path` or `url` must be specified"));
                }
                _ => {}
            }
            Ok(RepoSpec {
                local_path,
                url,
                branch: branch?,
                hash: hash?,
                path: path?,
                if_exists: if_exists?,
            })
        }
        _ => Err(cx.error(
            n,
            format!("expected a path, a URL or a mapping, got {}", n.kind_name()),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// user

/// A Unix user and group, by id or name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UnixUser {
    /// Numeric user id.
    pub uid: Option<i64>,
    /// Numeric group id.
    pub gid: Option<i64>,
    /// User name.
    pub username: Option<String>,
    /// Group name.
    pub groupname: Option<String>,
}

impl UnixUser {
    /// Parses `user[:group]`, each part an id or a name.
    pub fn parse(s: &str) -> Result<UnixUser, String> {
        let fail = |why: String| Err(format!("invalid user format: {why}"));
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() > 2 {
            return fail("too many parts".into());
        }
        let mut user = UnixUser::default();
        match parts[0] {
            "" => return fail("empty user name or id".into()),
            u => match decode::py_int(u) {
                Some(uid) if uid < 0 => return fail(format!("negative uid {uid}")),
                Some(uid) => user.uid = Some(uid),
                None => user.username = Some(u.to_string()),
            },
        }
        if let Some(group) = parts.get(1) {
            match *group {
                "" => return fail("empty group name or id".into()),
                g => match decode::py_int(g) {
                    Some(gid) if gid < 0 => return fail(format!("negative gid {gid}")),
                    Some(gid) => user.gid = Some(gid),
                    None => user.groupname = Some(g.to_string()),
                },
            }
        }
        Ok(user)
    }
}

/// `user`: validated as `user[:group]`, kept as written.
pub fn user(cx: &mut Cx, n: &Node) -> D<String> {
    let s = decode::string(cx, n)?;
    UnixUser::parse(&s).map_err(|m| cx.error(n, m))?;
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// tags

/// Whether a tag key is valid: `^[_\-a-zA-Z0-9]{1,60}$`.
pub fn is_valid_tag_key(k: &str) -> bool {
    (1..=60).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether a tag value is valid: `^[a-zA-Z0-9 .:/=_\-+@]{0,256}$`.
pub fn is_valid_tag_value(v: &str) -> bool {
    v.len() <= 256
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" .:/=_-+@".contains(&b))
}

/// Resource tags, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(pub Vec<(String, String)>);

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `tags`: a mapping of valid keys to valid values.
pub fn tags(cx: &mut Cx, n: &Node) -> D<Tags> {
    let Some(entries) = n.as_map() else {
        return Err(cx.error(
            n,
            format!("Input should be a valid dictionary, got {}", n.kind_name()),
        ));
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        let key = k.scalar_text().unwrap_or_default();
        let r = cx.at(&key, |cx| {
            let value = decode::string(cx, v)?;
            if !is_valid_tag_key(&key) {
                return Err(cx.error(
                    k,
                    format!("Invalid tag key {key}. The key must match regex '^[_\\-a-zA-Z0-9]{{1,60}}$'"),
                ));
            }
            if !is_valid_tag_value(&value) {
                return Err(cx.error(
                    v,
                    format!("Invalid tag value {value}. The value must match regex '^[a-zA-Z0-9 .:/=_\\-+@]{{0,256}}$'"),
                ));
            }
            Ok(value)
        });
        match r {
            Ok(value) => out.push((key, value)),
            Err(_) => ok = false,
        }
    }
    if ok {
        Ok(Tags(out))
    } else {
        Err(decode::Invalid)
    }
}

// ---------------------------------------------------------------------------------------------
// Entity references

/// A reference to a fleet or gateway, optionally in another project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityReference {
    /// The project; `None` = the run's project.
    pub project: Option<String>,
    /// The name.
    pub name: String,
}

impl EntityReference {
    /// Parses `<name>` or `<project>/<name>`.
    pub fn parse(s: &str) -> Result<EntityReference, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            "Invalid entity reference. Only `<name>` or `<project>/<name>` formats are allowed"
                .to_string()
        };
        match parts[..] {
            [name] if !name.is_empty() => Ok(EntityReference {
                project: None,
                name: name.into(),
            }),
            [project, name] if !project.is_empty() && !name.is_empty() => Ok(EntityReference {
                project: Some(project.into()),
                name: name.into(),
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for EntityReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.project {
            Some(p) => write!(f, "{p}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A string or `{project, name}` reference.
pub fn entity_reference(cx: &mut Cx, n: &Node) -> D<EntityReference> {
    match &n.value {
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { project, name });
            let project = decode::opt(cx, "project", f.project, decode::string);
            let name = decode::req(cx, n, "name", f.name, decode::string);
            ok?;
            Ok(EntityReference {
                project: project?,
                name: name?,
            })
        }
        _ => {
            let s = decode::string(cx, n)?;
            EntityReference::parse(&s).map_err(|m| cx.error(n, m))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// registry_auth

/// Credentials for a private image registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RegistryAuth {
    /// User name (may use `${{ env.X }}` / `${{ secrets.X }}`).
    pub username: String,
    /// Password or token (may use `${{ env.X }}` / `${{ secrets.X }}`).
    pub password: String,
}

/// `registry_auth`.
pub fn registry_auth(cx: &mut Cx, n: &Node) -> D<RegistryAuth> {
    let (ok, f) = fields!(cx, n, [], { username, password });
    let username = decode::req(cx, n, "username", f.username, decode::string);
    let password = decode::req(cx, n, "password", f.password, decode::string);
    ok?;
    Ok(RegistryAuth {
        username: username?,
        password: password?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration(" 90 "), Some(90));
        assert_eq!(parse_duration("2 h"), Some(7200));
        assert_eq!(parse_duration("1d"), Some(86400));
        assert_eq!(parse_duration("1H"), None);
        assert_eq!(parse_duration(" 2h"), None);
        assert_eq!(parse_duration("2h "), None);
        assert_eq!(parse_duration("1h30m"), None);
        assert_eq!(parse_duration("1.5h"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn mount_points() {
        assert_eq!(
            parse_mount_point("my-vol:/path/./to///dir/"),
            Ok(MountPoint::Volume {
                name: VolumeNames::One("my-vol".into()),
                path: "/path/to/dir".into()
            })
        );
        assert_eq!(
            parse_mount_point("path/to:/run"),
            Err("path must be absolute: path/to".into())
        );
        assert!(parse_mount_point("v:/p:ro").is_err());
    }

    #[test]
    fn repos() {
        let r = parse_repo("git@example.com:repo.git:/repo").expect("parses");
        assert_eq!(r.url.as_deref(), Some("git@example.com:repo.git"));
        assert_eq!(r.path, "/repo");
        let r = parse_repo("C:\\repo:/repo").expect("parses");
        assert_eq!(r.local_path.as_deref(), Some("C:\\repo"));
    }

    #[test]
    fn users() {
        assert_eq!(
            UnixUser::parse("1000:wheel").map(|u| (u.uid, u.groupname)),
            Ok((Some(1000), Some("wheel".into())))
        );
        assert_eq!(
            UnixUser::parse("-1:g"),
            Err("invalid user format: negative uid -1".into())
        );
    }
}
