//! CPU and memory limits for the jobs of the local fleet, with the kernel's control groups.
//!
//! The local fleet offers the host to each job up to the upper bounds of its `cpu` and `memory`
//! ranges (`cpu: 1` and `memory: 4GB` are exact, so they bound too; see
//! [`super::host::HostResources::offer_within`]), and holds the job to what it was offered: an
//! open range (`8GB..`) is offered, and may use, the whole host. Each job with a limit gets a
//! cgroup of its
//! own under the server's: with cgroup v2, `<server's cgroup>/dstack-jobs/<job id>` (the server
//! moves itself to `<server's cgroup>/dstack-server`, as the "no internal processes" rule asks);
//! on hosts still on the v1 `cpu` and `memory` controllers, a `dstack-jobs/<job id>` under the
//! server's group of each. The runner joins the job's cgroups before it starts the job, so
//! everything the job starts is inside; the backend removes them when the job is released.
//! Where the server may not create cgroups, jobs run without limits and the server says so at
//! start.

use std::path::{Path, PathBuf};

use crate::resources::ResourcesSpec;

/// The quota period, in µs.
const PERIOD_US: u64 = 100_000;

/// What a job is held to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Limits {
    /// CPUs (the quota is this many periods per period).
    pub cpus: Option<f64>,
    /// Memory, bytes.
    pub memory: Option<u64>,
}

impl Limits {
    /// The limits of a job requesting `resources` on a host with `cpus` CPUs and `memory_gib`
    /// of memory: the upper bounds of its ranges below the host's.
    pub(crate) fn of(resources: &ResourcesSpec, cpus: u32, memory_gib: f64) -> Limits {
        Limits {
            cpus: resources
                .cpu
                .count
                .max
                .filter(|n| *n > 0 && *n < i64::from(cpus))
                .map(|n| n as f64),
            memory: resources
                .memory
                .max
                .filter(|m| m.0 > 0.0 && m.0 < memory_gib)
                .map(|m| (m.0 * 1024.0 * 1024.0 * 1024.0).round() as u64),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.cpus.is_none() && self.memory.is_none()
    }

    /// `cpu.max` (v2): `<quota> <period>`.
    fn cpu_max(cpus: f64) -> String {
        format!("{} {PERIOD_US}", Self::quota(cpus))
    }

    fn quota(cpus: f64) -> u64 {
        ((cpus * PERIOD_US as f64).ceil() as u64).max(1000)
    }
}

/// Where the server makes its jobs' cgroups.
#[derive(Debug, Clone)]
pub(crate) enum Cgroups {
    /// The parent of the jobs' cgroups (cgroup v2).
    V2 { jobs: PathBuf },
    /// The parents under the v1 `cpu` and `memory` controllers.
    V1 { cpu: PathBuf, memory: PathBuf },
}

fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("cannot {what} {}: {e}", path.display())
}

/// A cgroup mount: where it is mounted, the cgroup it shows at its root, and its options.
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    point: PathBuf,
    root: String,
    fstype: String,
    options: Vec<String>,
}

/// The cgroup mounts of a `/proc/self/mountinfo`.
fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split_whitespace().collect();
            let mut right = right.split_whitespace();
            let fstype = right.next()?.to_string();
            let _source = right.next()?;
            let options = right.next().unwrap_or("").split(',').map(String::from);
            let (root, point) = (left.get(3)?, left.get(4)?);
            (fstype == "cgroup" || fstype == "cgroup2").then(|| Mount {
                point: PathBuf::from(point),
                root: root.to_string(),
                fstype,
                options: options.collect(),
            })
        })
        .collect()
}

/// The directory of the cgroup `path` (as `/proc/self/cgroup` gives it) under `mount`.
fn dir_of(mount: &Mount, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(mount.root.as_str())
        .unwrap_or(path)
        .trim_start_matches('/');
    mount.point.join(rel)
}

impl Cgroups {
    /// Finds where this server may make cgroups for its jobs; `Err` says why it may not.
    pub(crate) fn detect() -> Result<Cgroups, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let mounts = mounts(&mountinfo);
        let v1 = |controller: &str| -> Option<PathBuf> {
            let path = own.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|c| c == controller)
                    .then_some(path)
            })?;
            let mount = mounts
                .iter()
                .find(|m| m.fstype == "cgroup" && m.options.iter().any(|o| o == controller))?;
            Some(dir_of(mount, path))
        };
        if let (Some(cpu), Some(memory)) = (v1("cpu"), v1("memory")) {
            let (cpu, memory) = (cpu.join("dstack-jobs"), memory.join("dstack-jobs"));
            for dir in [&cpu, &memory] {
                std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
            }
            return Ok(Cgroups::V1 { cpu, memory });
        }
        let path = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or("no cgroup v2 hierarchy and no v1 cpu and memory controllers")?;
        let mount = mounts
            .iter()
            .find(|m| m.fstype == "cgroup2")
            .ok_or("cgroup v2 is not mounted")?;
        let own = dir_of(mount, path);
        let available = std::fs::read_to_string(own.join("cgroup.controllers"))
            .map_err(|e| io("read", &own.join("cgroup.controllers"), e))?;
        for c in ["cpu", "memory"] {
            if !available.split_whitespace().any(|a| a == c) {
                return Err(format!(
                    "the `{c}` controller is not available in {}",
                    own.display()
                ));
            }
        }
        let enable = |dir: &Path| {
            let file = dir.join("cgroup.subtree_control");
            std::fs::write(&file, "+cpu +memory").map_err(|e| io("write", &file, e))
        };
        if enable(&own).is_err() {
            // Processes in the server's cgroup keep controllers from being handed down: the
            // server moves itself to a leaf of its own.
            let leaf = own.join("dstack-server");
            std::fs::create_dir_all(&leaf).map_err(|e| io("create", &leaf, e))?;
            std::fs::write(leaf.join("cgroup.procs"), std::process::id().to_string())
                .map_err(|e| io("move the server into", &leaf, e))?;
            enable(&own)?;
        }
        let jobs = own.join("dstack-jobs");
        std::fs::create_dir_all(&jobs).map_err(|e| io("create", &jobs, e))?;
        enable(&jobs)?;
        Ok(Cgroups::V2 { jobs })
    }

    /// The job's cgroups (whether they exist or not).
    fn dirs(&self, job_id: &str) -> Vec<PathBuf> {
        match self {
            Cgroups::V2 { jobs } => vec![jobs.join(job_id)],
            Cgroups::V1 { cpu, memory } => vec![cpu.join(job_id), memory.join(job_id)],
        }
    }

    /// Makes the cgroups of the job `job_id` (a validated id) with `limits`; returns those
    /// the job's runner joins.
    pub(crate) fn create(&self, job_id: &str, limits: &Limits) -> Result<Vec<PathBuf>, String> {
        let write = |dir: &Path, file: &str, value: String| {
            std::fs::write(dir.join(file), value).map_err(|e| io("write", &dir.join(file), e))
        };
        let dirs = self.dirs(job_id);
        for dir in &dirs {
            std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        }
        match self {
            Cgroups::V2 { .. } => {
                let dir = &dirs[0];
                if let Some(cpus) = limits.cpus {
                    write(dir, "cpu.max", Limits::cpu_max(cpus))?;
                }
                if let Some(bytes) = limits.memory {
                    write(dir, "memory.max", bytes.to_string())?;
                    // Swap would let the job past the limit.
                    let _ = write(dir, "memory.swap.max", "0".into());
                }
            }
            Cgroups::V1 { .. } => {
                if let Some(cpus) = limits.cpus {
                    write(&dirs[0], "cpu.cfs_period_us", PERIOD_US.to_string())?;
                    write(
                        &dirs[0],
                        "cpu.cfs_quota_us",
                        Limits::quota(cpus).to_string(),
                    )?;
                }
                if let Some(bytes) = limits.memory {
                    write(&dirs[1], "memory.limit_in_bytes", bytes.to_string())?;
                    let _ = write(&dirs[1], "memory.memsw.limit_in_bytes", bytes.to_string());
                }
            }
        }
        Ok(dirs)
    }

    /// Removes the job's cgroups (once its processes are gone).
    pub(crate) fn remove(&self, job_id: &str) {
        for dir in self.dirs(job_id) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Moves the calling process into `dirs` (the runner, before it starts the job).
pub(super) fn join(dirs: &[PathBuf]) -> std::io::Result<()> {
    for dir in dirs {
        std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Memory, Range};

    #[test]
    fn limits_are_the_upper_bounds() {
        let mut r = ResourcesSpec::default();
        r.cpu.count = Range {
            min: Some(1),
            max: None,
        };
        r.memory = Range {
            min: Some(Memory(0.1)),
            max: None,
        };
        assert!(Limits::of(&r, 8, 16.0).is_empty());
        r.cpu.count = Range::exact(2);
        r.memory.max = Some(Memory(0.5));
        let l = Limits::of(&r, 8, 16.0);
        assert_eq!(l.cpus, Some(2.0));
        assert_eq!(l.memory, Some(512 * 1024 * 1024));
        // Bounds at or above the host's are no limit.
        assert!(Limits::of(&r, 2, 0.5).is_empty());
        assert_eq!(Limits::cpu_max(2.0), "200000 100000");
        assert_eq!(Limits::quota(0.5), 50_000);
    }

    #[test]
    fn the_limits_are_written_where_each_version_reads_them() {
        // Plain directories stand in for cgroupfs (which makes the files itself).
        let root = std::env::temp_dir().join(format!("dstack-cgroup-test-{}", std::process::id()));
        let limits = Limits {
            cpus: Some(1.5),
            memory: Some(1 << 30),
        };
        let v2 = Cgroups::V2 {
            jobs: root.join("v2"),
        };
        let dirs = v2.create("job-1", &limits).unwrap();
        assert_eq!(dirs, vec![root.join("v2/job-1")]);
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(read("v2/job-1/cpu.max"), "150000 100000");
        assert_eq!(read("v2/job-1/memory.max"), "1073741824");
        let v1 = Cgroups::V1 {
            cpu: root.join("cpu"),
            memory: root.join("memory"),
        };
        v1.create("job-1", &limits).unwrap();
        assert_eq!(read("cpu/job-1/cpu.cfs_quota_us"), "150000");
        assert_eq!(read("cpu/job-1/cpu.cfs_period_us"), "100000");
        assert_eq!(read("memory/job-1/memory.limit_in_bytes"), "1073741824");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn cgroup_mounts_and_paths_are_read_from_mountinfo() {
        let info = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    35 31 0:32 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                    40 23 0:40 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let m = mounts(info);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].options, vec!["rw", "cpu"]);
        assert_eq!(
            dir_of(&m[1], "/outer/svc"),
            PathBuf::from("/sys/fs/cgroup/memory/svc")
        );
        assert_eq!(dir_of(&m[2], "/"), PathBuf::from("/sys/fs/cgroup/unified"));
    }
}
