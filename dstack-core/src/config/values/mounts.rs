//! `volumes` mount points (network volumes and instance paths) and `files` mappings.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::config::decode::{self, Cx, D, fields};
use crate::config::node::{Node, Value};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
