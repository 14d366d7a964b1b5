//! The local fleet: the machine the server runs on, offered with its real resources, running
//! jobs as supervised process groups.
//!
//! Each job submission gets a directory with `job.json` (what to run). The server starts a
//! detached runner process (`dstack job-runner DIR`) in its own process group; the runner starts
//! the job in a new process group, writes its output as timestamped JSON lines to the log file,
//! and records the exit status in `status.json`. Runners do not depend on the server staying
//! up, so jobs outlive a server crash; a restarted server picks their state up from the files.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::api::runs::{Disk, Gpu as ApiGpu, InstanceOffer, InstanceType, Resources};
use crate::offers::{Gpu, Offer};
use crate::resources::gpu::{HostTool, normalize_host_gpu_name};
use crate::resources::{CpuArch, Vendor};

/// What the host has.
#[derive(Debug, Clone, PartialEq)]
pub struct HostResources {
    /// Logical CPUs.
    pub cpus: u32,
    /// Architecture.
    pub arch: CpuArch,
    /// RAM, MiB.
    pub memory_mib: u64,
    /// Size of the disk holding the jobs' directories, MiB.
    pub disk_mib: u64,
    /// GPUs reported by `nvidia-smi` / `amd-smi`.
    pub gpus: Vec<Gpu>,
}

impl HostResources {
    /// Reads the host's resources; `work_dir` is where job directories live.
    pub fn detect(work_dir: &Path) -> HostResources {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let arch = if std::env::consts::ARCH.starts_with("aarch64")
            || std::env::consts::ARCH.starts_with("arm")
        {
            CpuArch::Arm
        } else {
            CpuArch::X86
        };
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| parse_meminfo_kib(&t))
            .map_or(0, |kib| kib / 1024);
        HostResources {
            cpus,
            arch,
            memory_mib,
            disk_mib: disk_size_mib(work_dir).unwrap_or(0),
            gpus: {
                let mut gpus = nvidia_gpus();
                gpus.extend(amd_gpus());
                gpus
            },
        }
    }

    /// The host as an offer for matching.
    pub fn offer(&self) -> Offer {
        Offer {
            cpus: self.cpus,
            cpu_arch: self.arch,
            memory_gib: self.memory_mib as f64 / 1024.0,
            gpus: self.gpus.clone(),
            disk_gib: Some(self.disk_mib as f64 / 1024.0),
            spot: false,
            price: 0.0,
        }
    }

    /// The host as the API shows an instance type.
    pub fn instance_type(&self) -> InstanceType {
        InstanceType {
            name: "local".into(),
            resources: Resources {
                cpus: self.cpus,
                memory_mib: self.memory_mib,
                gpus: self
                    .gpus
                    .iter()
                    .map(|g| ApiGpu {
                        name: g.name.clone(),
                        memory_mib: (g.memory_gib * 1024.0) as u64,
                        vendor: Some(g.vendor.as_str().into()),
                    })
                    .collect(),
                spot: false,
                disk: Disk {
                    size_mib: self.disk_mib,
                },
                cpu_arch: Some(self.arch.as_str().into()),
                description: String::new(),
            },
        }
    }

    /// The host as an offer in the API (backend `remote`, as the original shows on-prem hosts).
    pub fn api_offer(&self, busy: bool) -> InstanceOffer {
        InstanceOffer {
            backend: "remote".into(),
            instance: self.instance_type(),
            region: "local".into(),
            price: 0.0,
            backend_data: serde_json::Map::new(),
            availability: if busy { "busy" } else { "idle" }.into(),
            availability_zones: None,
            instance_runtime: "runner".into(),
            blocks: 1,
            total_blocks: 1,
        }
    }
}

/// `MemTotal` in KiB.
pub fn parse_meminfo_kib(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn disk_size_mib(dir: &Path) -> Option<u64> {
    let out = Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    parse_df_kib(&String::from_utf8_lossy(&out.stdout)).map(|kib| kib / 1024)
}

/// The total size (KiB) from `df -Pk` output.
pub fn parse_df_kib(text: &str) -> Option<u64> {
    text.lines().nth(1)?.split_whitespace().nth(1)?.parse().ok()
}

fn nvidia_gpus() -> Vec<Gpu> {
    tool_output(
        "nvidia-smi",
        &[
            "--query-gpu=name,memory.total",
            "--format=csv,noheader,nounits",
        ],
    )
    .map(|text| parse_nvidia_smi(&text))
    .unwrap_or_default()
}

fn amd_gpus() -> Vec<Gpu> {
    tool_output("amd-smi", &["static", "--asic", "--vram", "--csv"])
        .map(|text| parse_amd_smi_csv(&text))
        .unwrap_or_default()
}

/// Stdout of a vendor tool, or `None` when it is missing or fails.
fn tool_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Parses `amd-smi static --asic --vram --csv`: a header row naming `market_name` and
/// `size` (VRAM in MB), then one row per GPU.
pub fn parse_amd_smi_csv(text: &str) -> Vec<Gpu> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let (Some(name_col), Some(size_col)) = (
        cols.iter().position(|c| *c == "market_name"),
        cols.iter().position(|c| *c == "size"),
    ) else {
        return Vec::new();
    };
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let name = fields.get(name_col)?;
            let mb: f64 = fields.get(size_col)?.parse().ok()?;
            Some(Gpu {
                name: normalize_host_gpu_name(HostTool::AmdSmi, name),
                memory_gib: (mb / 1024.0).round(),
                vendor: Vendor::Amd,
            })
        })
        .collect()
}

/// Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`.
pub fn parse_nvidia_smi(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let (name, mem) = line.rsplit_once(',')?;
            let mib: f64 = mem.trim().parse().ok()?;
            Some(Gpu {
                name: normalize_host_gpu_name(HostTool::NvidiaSmi, name.trim()),
                memory_gib: (mib / 1024.0).round(),
                vendor: Vendor::Nvidia,
            })
        })
        .collect()
}

/// What a runner runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobLaunch {
    /// Command line.
    pub argv: Vec<String>,
    /// Environment (the whole environment of the job).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub working_dir: PathBuf,
    /// Log file (JSON lines).
    pub log_file: PathBuf,
}

/// How a job ended (`status.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal, when it was killed.
    pub signal: Option<i32>,
}

/// Files in a job directory.
pub fn launch_file(dir: &Path) -> PathBuf {
    dir.join("job.json")
}
/// `status.json`
pub fn status_file(dir: &Path) -> PathBuf {
    dir.join("status.json")
}
/// The runner's pid.
pub fn runner_pid_file(dir: &Path) -> PathBuf {
    dir.join("runner.pid")
}
/// The job's process group id.
pub fn job_pgid_file(dir: &Path) -> PathBuf {
    dir.join("job.pgid")
}

/// Starts a detached runner for the job in `dir` (`runner_exe job-runner DIR`).
pub fn spawn_runner(runner_exe: &Path, dir: &Path) -> std::io::Result<u32> {
    use std::os::unix::process::CommandExt;
    let child = Command::new(runner_exe)
        .arg("job-runner")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    std::fs::write(runner_pid_file(dir), pid.to_string())?;
    // The runner is reaped by init once the server is gone; while the server lives, a thread
    // reaps it so it does not linger as a zombie.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    Ok(pid)
}

/// Reads the exit status a runner recorded.
pub fn read_status(dir: &Path) -> Option<ExitStatus> {
    let text = std::fs::read_to_string(status_file(dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether a process is alive (and not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X") | None)
        }
        Err(_) => false,
    }
}

/// The runner's pid, if recorded.
pub fn runner_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(runner_pid_file(dir))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sends a signal (`TERM`, `KILL`) to the job's whole process group.
pub fn signal_job(dir: &Path, signal: &str) -> bool {
    let Some(pgid) = std::fs::read_to_string(job_pgid_file(dir))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
    else {
        return false;
    };
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The runner's main: runs the job described in `dir`, copies its output into the log file,
/// records how it ended. Returns the process exit code for the runner itself.
pub fn run_job(dir: &Path) -> i32 {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let launch: JobLaunch = match std::fs::read_to_string(launch_file(dir))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        Some(l) => l,
        None => return 2,
    };
    if let Some(parent) = launch.log_file.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log_file)
    {
        Ok(f) => std::sync::Arc::new(std::sync::Mutex::new(f)),
        Err(_) => return 2,
    };
    let Some((program, args)) = launch.argv.split_first() else {
        return 2;
    };
    let spawned = Command::new(program)
        .args(args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            write_event(
                &log,
                "stderr",
                format!("dstack: cannot start the job: {e}\n").as_bytes(),
            );
            let status = ExitStatus {
                code: Some(127),
                signal: None,
            };
            let _ = std::fs::write(
                status_file(dir),
                serde_json::to_string(&status).unwrap_or_default(),
            );
            return 0;
        }
    };
    let _ = std::fs::write(job_pgid_file(dir), child.id().to_string());
    let pumps: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| (Box::new(s) as Box<dyn Read + Send>, "stdout")),
        child
            .stderr
            .take()
            .map(|s| (Box::new(s) as Box<dyn Read + Send>, "stderr")),
    ]
    .into_iter()
    .flatten()
    .map(|(mut stream, source)| {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => write_event(&log, source, &buf[..n]),
                }
            }
        })
    })
    .collect();
    let status = child.wait();
    for p in pumps {
        let _ = p.join();
    }
    let status = match status {
        Ok(s) => ExitStatus {
            code: s.code(),
            signal: s.signal(),
        },
        Err(_) => ExitStatus {
            code: None,
            signal: None,
        },
    };
    let tmp = dir.join("status.json.tmp");
    if std::fs::write(&tmp, serde_json::to_string(&status).unwrap_or_default()).is_ok() {
        let _ = std::fs::rename(&tmp, status_file(dir));
    }
    0
}

fn write_event(log: &std::sync::Mutex<std::fs::File>, source: &str, bytes: &[u8]) {
    let event = serde_json::json!({
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        "log_source": source,
        "message": base64::engine::general_purpose::STANDARD.encode(bytes),
    });
    if let Ok(mut f) = log.lock() {
        let _ = writeln!(f, "{event}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_tools() {
        assert_eq!(
            parse_meminfo_kib("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24_576_000)
        );
        let df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 263174212 1 2 1% /\n";
        assert_eq!(parse_df_kib(df), Some(263_174_212));
        let gpus = parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559\nNVIDIA H100 80GB HBM3, 81559\n");
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "H100");
        assert_eq!(gpus[0].memory_gib, 80.0);
        let amd = parse_amd_smi_csv(
            "gpu,market_name,vendor_id,size\n0,AMD Instinct MI300X,0x1002,196592\n",
        );
        assert_eq!(amd.len(), 1);
        assert_eq!(
            (amd[0].name.as_str(), amd[0].memory_gib, amd[0].vendor),
            ("MI300X", 192.0, Vendor::Amd)
        );
    }
}
