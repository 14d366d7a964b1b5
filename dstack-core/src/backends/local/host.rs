//! The host's resources: CPUs, memory, disk and GPUs (from `nvidia-smi` / `amd-smi`), read once
//! when the server starts, and how they look as an offer and an instance type.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::api::runs::{Disk, Gpu as ApiGpu, InstanceType, Resources};
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

    /// The host as offered to a job requesting `resources`: its CPUs and memory up to the upper
    /// bounds of the job's ranges, which the job is then held to (see [`super::cgroup`]).
    pub fn offer_within(&self, resources: &crate::resources::ResourcesSpec) -> Offer {
        let mut offer = self.offer();
        if let Some(max) = resources.cpu.count.max.filter(|m| *m > 0) {
            offer.cpus = offer.cpus.min(u32::try_from(max).unwrap_or(u32::MAX));
        }
        if let Some(max) = resources.memory.max.filter(|m| m.0 > 0.0) {
            offer.memory_gib = offer.memory_gib.min(max.0);
        }
        offer
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
