//! Known accelerators: vendor detection from names, NVIDIA compute capabilities, and the
//! normalisation of names reported by host tools (`nvidia-smi`, `amd-smi`, `hl-smi`).
//!
//! The tables follow the catalogue the original ships (gpuhunt 0.1.30).

use super::{ComputeCapability, Vendor};

/// NVIDIA models with their compute capability.
const NVIDIA: &[(&str, (u32, u32))] = &[
    ("A10", (8, 6)),
    ("A100", (8, 0)),
    ("A10G", (8, 6)),
    ("A16", (8, 6)),
    ("A40", (8, 6)),
    ("A4000", (8, 6)),
    ("A4500", (8, 6)),
    ("A5000", (8, 6)),
    ("A6000", (8, 6)),
    ("B200", (10, 0)),
    ("B300", (10, 3)),
    ("GB200", (10, 0)),
    ("GH200", (9, 0)),
    ("H100", (9, 0)),
    ("H100NVL", (9, 0)),
    ("H200", (9, 0)),
    ("H200NVL", (9, 0)),
    ("L4", (8, 9)),
    ("L40", (8, 9)),
    ("L40S", (8, 9)),
    ("P100", (6, 0)),
    ("RTX2000Ada", (8, 9)),
    ("RTX2060", (7, 5)),
    ("RTX2060SUPER", (7, 5)),
    ("RTX2070", (7, 5)),
    ("RTX2070SUPER", (7, 5)),
    ("RTX2080", (7, 5)),
    ("RTX2080SUPER", (7, 5)),
    ("RTX2080Ti", (7, 5)),
    ("RTX3050", (8, 6)),
    ("RTX3060", (8, 6)),
    ("RTX3060Ti", (8, 6)),
    ("RTX3070", (8, 6)),
    ("RTX3070Ti", (8, 6)),
    ("RTX3080", (8, 6)),
    ("RTX3080Ti", (8, 6)),
    ("RTX3090", (8, 6)),
    ("RTX3090Ti", (8, 6)),
    ("RTX4000Ada", (8, 9)),
    ("RTX4060", (8, 9)),
    ("RTX4060Ti", (8, 9)),
    ("RTX4070", (8, 9)),
    ("RTX4070SUPER", (8, 9)),
    ("RTX4070Ti", (8, 9)),
    ("RTX4070TiSUPER", (8, 9)),
    ("RTX4080", (8, 9)),
    ("RTX4080SUPER", (8, 9)),
    ("RTX4090", (8, 9)),
    ("RTX5060", (12, 0)),
    ("RTX5060Ti", (12, 0)),
    ("RTX5070", (12, 0)),
    ("RTX5070Ti", (12, 0)),
    ("RTX5080", (12, 0)),
    ("RTX5090", (12, 0)),
    ("RTX6000", (7, 5)),
    ("RTX6000Ada", (8, 9)),
    ("RTXPRO4500", (12, 0)),
    ("RTXPRO6000", (12, 0)),
    ("T4", (7, 5)),
    ("V100", (7, 0)),
];

const AMD: &[&str] = &[
    "MI100", "MI210", "MI250", "MI250X", "MI300A", "MI300X", "MI308X", "MI325X", "MI350X", "MI355X",
];

const INTEL: &[&str] = &["Gaudi", "Gaudi2", "Gaudi3"];

const TENSTORRENT: &[&str] = &[
    "n150",
    "n300",
    "p100a",
    "p150",
    "p300",
    "tt-galaxy-bh",
    "tt-galaxy-wh",
];

const TPU_VERSIONS: &[&str] = &["v2", "v3", "v4", "v5litepod", "v5p", "v6e"];

/// Whether `name` is a TPU name: `<version>-<cores>` such as `v5litepod-8` (case-insensitive).
pub fn is_tpu_name(name: &str) -> bool {
    let Some((version, cores)) = name.rsplit_once('-') else {
        return false;
    };
    !cores.is_empty()
        && cores.bytes().all(|b| b.is_ascii_digit())
        && TPU_VERSIONS.iter().any(|v| v.eq_ignore_ascii_case(version))
}

/// The vendors that make an accelerator with this name (empty when the name is unknown).
pub fn vendors_of(name: &str) -> Vec<Vendor> {
    let mut out = Vec::new();
    let eq = |n: &&str| n.eq_ignore_ascii_case(name);
    if NVIDIA.iter().map(|(n, _)| n).any(eq) {
        out.push(Vendor::Nvidia);
    }
    if AMD.iter().any(eq) {
        out.push(Vendor::Amd);
    }
    if is_tpu_name(name) {
        out.push(Vendor::Google);
    }
    if INTEL.iter().any(eq) {
        out.push(Vendor::Intel);
    }
    if TENSTORRENT.iter().any(eq) {
        out.push(Vendor::Tenstorrent);
    }
    out
}

/// The compute capability of a known NVIDIA model.
pub fn nvidia_compute_capability(name: &str) -> Option<ComputeCapability> {
    NVIDIA
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, (major, minor))| ComputeCapability(*major, *minor))
}

/// The tool that reported a GPU name on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostTool {
    /// `nvidia-smi`
    NvidiaSmi,
    /// `amd-smi`
    AmdSmi,
    /// `hl-smi` (Intel Gaudi)
    HlSmi,
}

/// Turns a name as a host tool prints it into the catalogue name used for matching:
/// `NVIDIA GeForce RTX 4060 Ti` → `RTX4060Ti`, `MI300X-O` → `MI300X`, `HL-225` → `Gaudi2`.
pub fn normalize_host_gpu_name(tool: HostTool, name: &str) -> String {
    match tool {
        HostTool::NvidiaSmi => normalize_nvidia(name),
        HostTool::AmdSmi => normalize_amd(name),
        HostTool::HlSmi => normalize_intel(name),
    }
}

fn normalize_nvidia(name: &str) -> String {
    let mut out = String::new();
    for token in name.split([' ', '-']).filter(|t| !t.is_empty()) {
        let upper = token.to_ascii_uppercase();
        if matches!(upper.as_str(), "NVIDIA" | "TESLA" | "GEFORCE" | "QUADRO") {
            continue;
        }
        let is_memory =
            upper.ends_with("GB") && upper[..upper.len() - 2].bytes().all(|b| b.is_ascii_digit());
        let is_form = upper == "PCIE" || upper.starts_with("SXM") || upper.starts_with("HBM");
        if is_memory || is_form {
            break;
        }
        out.push_str(token);
    }
    if out.is_empty() {
        name.to_string()
    } else {
        out
    }
}

fn normalize_amd(name: &str) -> String {
    for token in name.split([' ', '-', '(', ')']) {
        let upper = token.to_ascii_uppercase();
        if let Some(rest) = upper.strip_prefix("MI")
            && rest.len() >= 3
            && rest[..3].bytes().all(|b| b.is_ascii_digit())
        {
            return upper;
        }
    }
    name.to_string()
}

fn normalize_intel(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    match upper.strip_prefix("HL-") {
        Some(model) if model.starts_with("20") => "Gaudi".into(),
        Some(model) if model.starts_with("22") => "Gaudi2".into(),
        Some(model) if model.starts_with('3') => "Gaudi3".into(),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_vendors() {
        assert_eq!(vendors_of("Mi300X"), vec![Vendor::Amd]);
        assert_eq!(vendors_of("v6e-8"), vec![Vendor::Google]);
        assert_eq!(vendors_of("v3-x"), Vec::<Vendor>::new());
        assert_eq!(vendors_of("RTX4090D"), Vec::<Vendor>::new());
    }

    #[test]
    fn normalizes_host_names() {
        let n = |name| normalize_host_gpu_name(HostTool::NvidiaSmi, name);
        assert_eq!(n("NVIDIA GeForce RTX 4070 Ti SUPER"), "RTX4070TiSUPER");
        assert_eq!(n("NVIDIA H100 80GB HBM3"), "H100");
        assert_eq!(n("NVIDIA A100-SXM4-80GB"), "A100");
        assert_eq!(n("Tesla T4"), "T4");
        assert_eq!(
            normalize_host_gpu_name(HostTool::AmdSmi, "AMD INSTINCT MI250 (MCM) OAM AC MBA"),
            "MI250"
        );
        assert_eq!(normalize_host_gpu_name(HostTool::HlSmi, "HL-338"), "Gaudi3");
    }
}
