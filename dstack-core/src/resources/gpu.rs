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

/// Whether `name` is a TPU name: `<version>-<cores>` such as `v5litepod-8` (case-insensitive),
/// split at the first `-`.
pub fn is_tpu_name(name: &str) -> bool {
    let Some((version, cores)) = name.split_once('-') else {
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
/// The rules are the original's (`utils/gpu.py`: `convert_nvidia_gpu_name`,
/// `convert_amd_gpu_name`, `convert_intel_accelerator_name`).
pub fn normalize_host_gpu_name(tool: HostTool, name: &str) -> String {
    match tool {
        HostTool::NvidiaSmi => normalize_nvidia(name),
        HostTool::AmdSmi => normalize_amd(name),
        HostTool::HlSmi => normalize_intel(name),
    }
}

/// `nvidia-smi` names: drop the brand words, join the suffixes (` Ti`, ` SUPER` in any case,
/// ` NVL`, ` Ada Generation` → `Ada`, `RTX `), then take the first model token: a letter of
/// `AHLPTV` followed by digits and word characters (`H100 80GB HBM3` → `H100`); names with
/// none (`RTX4060Ti`, `B200`) are kept without spaces. `GH200` and `RTX A<n>` are special.
fn normalize_nvidia(name: &str) -> String {
    let mut name = name.to_string();
    for brand in ["NVIDIA ", "Tesla ", "Quadro ", "GeForce "] {
        name = name.replace(brand, "");
    }
    if name.contains("GH200") {
        return "GH200".into();
    }
    if name.contains("RTX A") {
        let name = name.replace("RTX A", "A");
        return model_token(&name, |c| c == 'A', false)
            .map_or_else(|| name.replace(' ', ""), str::to_string);
    }
    let name = name.replace(" Ti", "Ti");
    let name = join_super(&name);
    let name = name
        .replace(" NVL", "NVL")
        .replace(" Ada Generation", "Ada")
        .replace("RTX ", "RTX");
    model_token(&name, |c| "AHLPTV".contains(c), true)
        .map_or_else(|| name.replace(' ', ""), str::to_string)
}

/// The first `<lead><digits>[<word chars>]` in `s` (regex `(A\d+)` or `([AHLPTV]\d+\w*)`).
fn model_token(s: &str, lead: impl Fn(char) -> bool, word_tail: bool) -> Option<&str> {
    for (i, c) in s.char_indices() {
        if !lead(c) {
            continue;
        }
        let rest = &s[i + c.len_utf8()..];
        let digits = rest.len() - rest.trim_start_matches(|d: char| d.is_ascii_digit()).len();
        if digits == 0 {
            continue;
        }
        let mut end = i + c.len_utf8() + digits;
        if word_tail {
            let tail = &s[end..];
            end += tail.len()
                - tail
                    .trim_start_matches(|w: char| w.is_alphanumeric() || w == '_')
                    .len();
        }
        return Some(&s[i..end]);
    }
    None
}

/// `re.sub(r"(?i) ?SUPER", "SUPER", s)`.
fn join_super(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        let with_space = rest
            .strip_prefix(' ')
            .filter(|r| starts_with_ignore_case(r, "super"));
        if let Some(r) = with_space {
            out.push_str("SUPER");
            rest = &r[5..];
        } else if starts_with_ignore_case(rest, "super") {
            out.push_str("SUPER");
            rest = &rest[5..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// `amd-smi` market names: `[AMD ][Instinct ]MI<1-3 digits>[letter][-<word>]` at the start,
/// followed by whitespace or the end (case-insensitive), becomes that model; `MI300X-O` is
/// `MI300X`; anything else is kept.
fn normalize_amd(name: &str) -> String {
    let model = amd_market_model(name).unwrap_or(name);
    if model == "MI300X-O" {
        return "MI300X".into();
    }
    model.to_string()
}

fn amd_market_model(name: &str) -> Option<&str> {
    let mut rest = name;
    for prefix in ["AMD ", "Instinct "] {
        if starts_with_ignore_case(rest, prefix) {
            rest = &rest[prefix.len()..];
        }
    }
    if !starts_with_ignore_case(rest, "MI") {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut end = 2;
    let digits = bytes[end..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) {
        return None;
    }
    end += digits;
    if bytes.get(end).is_some_and(u8::is_ascii_alphabetic) {
        end += 1;
    }
    if bytes.get(end) == Some(&b'-') {
        let word = bytes[end + 1..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        if word > 0 {
            end += 1 + word;
        }
    }
    let at_boundary = bytes
        .get(end)
        .is_none_or(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'));
    at_boundary.then(|| &rest[..end])
}

/// `hl-smi` names: the model number prefix decides the market name; others are kept.
fn normalize_intel(name: &str) -> String {
    const MODELS: [(&str, &str); 4] = [
        ("HL-205", "Gaudi"),
        ("HL-225", "Gaudi2"),
        ("HL-325", "Gaudi3"),
        ("HL-338", "Gaudi3"),
    ];
    MODELS
        .iter()
        .find(|(model, _)| name.starts_with(model))
        .map_or_else(|| name.to_string(), |(_, market)| (*market).to_string())
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

    #[test]
    fn normalizes_by_rule_not_by_table() {
        let n = |name| normalize_host_gpu_name(HostTool::NvidiaSmi, name);
        assert_eq!(n("NVIDIA RTX 4000 Ada Generation"), "RTX4000Ada");
        assert_eq!(n("NVIDIA GeForce RTX 2070 Super"), "RTX2070SUPER");
        assert_eq!(n("NVIDIA GeForce RTX 2070 SUPER"), "RTX2070SUPER");
        assert_eq!(n("NVIDIA RTX A4000"), "A4000");
        assert_eq!(n("NVIDIA H100 NVL"), "H100NVL");
        let amd = |name| normalize_host_gpu_name(HostTool::AmdSmi, name);
        assert_eq!(amd("Instinct MI210"), "MI210");
        assert_eq!(amd("MI3000"), "MI3000");
        assert_eq!(
            normalize_host_gpu_name(HostTool::HlSmi, "HL-1000"),
            "HL-1000"
        );
    }
}
