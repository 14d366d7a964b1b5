//! Resource requirements: ranges, memory sizes, CPU/GPU/disk specs and their shorthand grammar.
//!
//! Pure values with `FromStr`-style parsers (`A100:80GB:2`, `x86:16..`, `24GB..`) and `Display`
//! impls that print the compact form back, as tables show it. Mapping forms and property paths
//! are the config layer's business; this module only knows strings and numbers.

pub mod gpu;

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// A resource shorthand could not be parsed. The message is the original's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResourceSpecError(pub String);

type Result<T> = std::result::Result<T, ResourceSpecError>;

fn err<T>(message: impl Into<String>) -> Result<T> {
    Err(ResourceSpecError(message.into()))
}

/// Parses a string the way Python's `int()` does: surrounding whitespace, a sign, and digits
/// with single underscores between them.
pub fn parse_py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let v: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// An amount of memory in gigabytes (1 GB = 1024 MB, 1 TB = 1024 GB), as the original counts.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Memory(pub f64);

impl Memory {
    /// Parses `512MB`, `16 GB`, `1TB`, or a bare number of gigabytes.
    pub fn parse(s: &str) -> Result<Memory> {
        let v: String = s
            .chars()
            .filter(|c| *c != ' ')
            .collect::<String>()
            .to_lowercase();
        let (number, scale) = if let Some(n) = v.strip_suffix("tb") {
            (n, 1024.0)
        } else if let Some(n) = v.strip_suffix("gb") {
            (n, 1.0)
        } else if let Some(n) = v.strip_suffix("mb") {
            (n, 1.0 / 1024.0)
        } else {
            (v.as_str(), 1.0)
        };
        match parse_py_float(number) {
            Some(f) => Ok(Memory(f * scale)),
            // Python's `float()` names the text it was given: the number without its unit.
            None => err(format!("could not convert string to float: '{number}'")),
        }
    }

    /// The size in gigabytes.
    pub fn gb(self) -> f64 {
        self.0
    }
}

/// Python's `float()` on a string (no surrounding spaces here).
fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t.contains("__") || t.starts_with('_') || t.ends_with('_') {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if !matches!(body, "inf" | "infinity" | "nan")
        && !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-' | b'_'))
    {
        return None;
    }
    t.replace('_', "").parse().ok()
}

impl fmt::Display for Memory {
    /// `16GB`, `0.5GB`: the number as Python's `format(v, "g")` writes it (the original's
    /// `Memory.__repr__`), so range errors read `Invalid range order: 0.0976562GB..0.5GB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}GB", format_g(self.0))
    }
}

impl Serialize for Memory {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

/// Python's `format(v, "g")`: six significant digits, trailing zeros dropped, and scientific
/// notation (`1.23457e+06`, `1e-05`) when the exponent is below -4 or at least 6.
pub fn format_g(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rounding to six significant digits first decides the notation (999999.5 -> 1e+06).
    let scientific = format!("{v:.5e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        let precision = usize::try_from(5 - exponent).unwrap_or(0);
        strip_fraction_zeros(&format!("{v:.precision$}")).to_string()
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            strip_fraction_zeros(mantissa),
            exponent.unsigned_abs()
        )
    }
}

fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A value that can bound a [`Range`].
pub trait Bound: Copy + PartialOrd + fmt::Display {
    /// Parses one side of a range.
    fn parse_bound(s: &str) -> Result<Self>;
}

impl Bound for i64 {
    fn parse_bound(s: &str) -> Result<i64> {
        parse_py_int(s).ok_or_else(|| {
            ResourceSpecError(format!("invalid literal for int() with base 10: '{s}'"))
        })
    }
}

impl Bound for Memory {
    fn parse_bound(s: &str) -> Result<Memory> {
        Memory::parse(s)
    }
}

/// An inclusive range; `None` is unbounded on that side. At least one side is set and
/// `min <= max` once validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range<T> {
    /// Lower bound.
    pub min: Option<T>,
    /// Upper bound.
    pub max: Option<T>,
}

impl<T: Bound> Range<T> {
    /// `v..v`
    pub fn exact(v: T) -> Range<T> {
        Range {
            min: Some(v),
            max: Some(v),
        }
    }

    /// `v..`
    pub fn at_least(v: T) -> Range<T> {
        Range {
            min: Some(v),
            max: None,
        }
    }

    /// Parses `8`, `1..4`, `2..`, `..80GB` (spaces are ignored around `..`).
    pub fn parse(s: &str) -> Result<Range<T>> {
        if s.contains("..") {
            let compact: String = s.chars().filter(|c| *c != ' ').collect();
            let mut parts = compact.split("..");
            let (lo, hi) = match (parts.next(), parts.next(), parts.next()) {
                (Some(lo), Some(hi), None) => (lo, hi),
                _ => return err("too many values to unpack (expected 2)"),
            };
            let min = if lo.is_empty() {
                None
            } else {
                Some(T::parse_bound(lo)?)
            };
            let max = if hi.is_empty() {
                None
            } else {
                Some(T::parse_bound(hi)?)
            };
            Range { min, max }.validated()
        } else {
            Ok(Range::exact(T::parse_bound(s)?))
        }
    }

    /// Checks the invariants: not `..`, and `min <= max`.
    pub fn validated(self) -> Result<Range<T>> {
        match (self.min, self.max) {
            (None, None) => err("Invalid empty range: .."),
            (Some(lo), Some(hi)) if lo > hi => err(format!("Invalid range order: {lo}..{hi}")),
            _ => Ok(self),
        }
    }

    /// Whether `v` lies in the range.
    pub fn contains(&self, v: T) -> bool {
        self.min.is_none_or(|lo| v >= lo) && self.max.is_none_or(|hi| v <= hi)
    }

    /// The intersection, or `None` when it is empty.
    pub fn intersect(&self, other: &Range<T>) -> Option<Range<T>> {
        let min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(if a > b { a } else { b }),
            (a, b) => a.or(b),
        };
        let max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(if a < b { a } else { b }),
            (a, b) => a.or(b),
        };
        match (min, max) {
            (Some(lo), Some(hi)) if lo > hi => None,
            _ => Some(Range { min, max }),
        }
    }
}

impl<T: Bound> fmt::Display for Range<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(lo), Some(hi)) if lo == hi => write!(f, "{lo}"),
            (Some(lo), Some(hi)) => write!(f, "{lo}..{hi}"),
            (Some(lo), None) => write!(f, "{lo}.."),
            (None, Some(hi)) => write!(f, "..{hi}"),
            (None, None) => f.write_str(".."),
        }
    }
}

impl<T: Serialize> Serialize for Range<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Range", 2)?;
        st.serialize_field("min", &self.min)?;
        st.serialize_field("max", &self.max)?;
        st.end()
    }
}

/// CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuArch {
    /// x86-64
    X86,
    /// ARM64
    Arm,
}

impl CpuArch {
    /// Case-insensitive `x86` / `arm`.
    pub fn parse(s: &str) -> Option<CpuArch> {
        match s.to_ascii_lowercase().as_str() {
            "x86" => Some(CpuArch::X86),
            "arm" => Some(CpuArch::Arm),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            CpuArch::X86 => "x86",
            CpuArch::Arm => "arm",
        }
    }
}

/// CPU requirements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuSpec {
    /// Architecture; `None` means any (offers without one count as x86).
    pub arch: Option<CpuArch>,
    /// Number of CPUs.
    pub count: Range<i64>,
}

impl Default for CpuSpec {
    fn default() -> CpuSpec {
        CpuSpec {
            arch: None,
            count: Range::at_least(2),
        }
    }
}

impl CpuSpec {
    /// Parses `16`, `2..8`, `x86:16..`, `arm:8`, `2..:ARM`, `X86`.
    pub fn parse(s: &str) -> Result<CpuSpec> {
        let compact: String = s.chars().filter(|c| *c != ' ').collect();
        let mut spec = CpuSpec::default();
        // Tokens are sorted out first (conflicts win); the count is read afterwards, as the
        // original's model validates the fields the shorthand produced.
        let (mut arch_seen, mut count) = (false, None);
        for token in compact.split(':') {
            if token.is_empty() {
                return err(format!("CPU spec contains empty token: {s}"));
            }
            if token.contains("..") || token.bytes().all(|b| b.is_ascii_digit()) {
                if count.is_some() {
                    return err(format!("CPU spec count conflict: {s}"));
                }
                count = Some(token);
            } else {
                if arch_seen {
                    return err(format!("CPU spec arch conflict: {s}"));
                }
                spec.arch =
                    Some(CpuArch::parse(token).ok_or_else(|| {
                        ResourceSpecError(format!("Invalid CPU architecture: {s}"))
                    })?);
                arch_seen = true;
            }
        }
        if let Some(count) = count {
            spec.count = Range::parse(count)?;
        }
        Ok(spec)
    }
}

impl fmt::Display for CpuSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.arch {
            Some(arch) => write!(f, "{}:{}", arch.as_str(), self.count),
            None => write!(f, "{}", self.count),
        }
    }
}

/// Accelerator vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    /// NVIDIA GPUs
    Nvidia,
    /// AMD GPUs
    Amd,
    /// Google TPUs
    Google,
    /// Intel Gaudi accelerators
    Intel,
    /// Tenstorrent accelerators
    Tenstorrent,
}

impl Vendor {
    /// Case-insensitive name, with the aliases `tpu` (Google) and `tt` (Tenstorrent).
    pub fn parse(s: &str) -> Option<Vendor> {
        match s.to_ascii_lowercase().as_str() {
            "nvidia" => Some(Vendor::Nvidia),
            "amd" => Some(Vendor::Amd),
            "google" | "tpu" => Some(Vendor::Google),
            "intel" => Some(Vendor::Intel),
            "tenstorrent" | "tt" => Some(Vendor::Tenstorrent),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Nvidia => "nvidia",
            Vendor::Amd => "amd",
            Vendor::Google => "google",
            Vendor::Intel => "intel",
            Vendor::Tenstorrent => "tenstorrent",
        }
    }
}

/// NVIDIA compute capability `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ComputeCapability(pub u32, pub u32);

impl ComputeCapability {
    /// Parses `7.5`.
    pub fn parse(s: &str) -> Result<ComputeCapability> {
        let mut parts = s.split('.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => match (a.parse(), b.parse()) {
                (Ok(a), Ok(b)) => Ok(ComputeCapability(a, b)),
                _ => err(format!("Invalid compute capability: {s}")),
            },
            _ => err(format!("Invalid compute capability: {s}")),
        }
    }
}

impl Serialize for ComputeCapability {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        (self.0, self.1).serialize(s)
    }
}

impl fmt::Display for ComputeCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// GPU requirements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuSpec {
    /// Vendor; inferred by the server from names or the image when unset.
    pub vendor: Option<Vendor>,
    /// Acceptable model names (any of them).
    pub name: Option<Vec<String>>,
    /// Number of GPUs.
    pub count: Range<i64>,
    /// Memory per GPU.
    pub memory: Option<Range<Memory>>,
    /// Memory of all GPUs together.
    pub total_memory: Option<Range<Memory>>,
    /// Minimal compute capability (NVIDIA only).
    pub compute_capability: Option<ComputeCapability>,
}

impl GpuSpec {
    /// The spec of a `gpu:` value with nothing else said: one GPU or more.
    pub fn any_count_from(min: i64) -> GpuSpec {
        GpuSpec {
            vendor: None,
            name: None,
            count: Range::at_least(min),
            memory: None,
            total_memory: None,
            compute_capability: None,
        }
    }

    /// Parses the shorthand: tokens separated by `:` in any order, each one of a vendor
    /// (`nvidia`, `tpu`, ...), a name list (`A10G,A100`), a memory range (`24GB..`) or a
    /// count range (`2`, `1..2`).
    pub fn parse(s: &str) -> Result<GpuSpec> {
        let compact: String = s.chars().filter(|c| *c != ' ').collect();
        let mut spec = GpuSpec::any_count_from(1);
        // Tokens are sorted out first (conflicts win); count and memory are read afterwards,
        // in the model's field order, as the original validates the fields the shorthand made.
        let (mut vendor_seen, mut name_seen) = (false, false);
        let (mut memory, mut count) = (None, None);
        for token in compact.split(':') {
            if token.is_empty() {
                return err(format!("GPU spec contains empty token: {s}"));
            }
            if let Some(vendor) = Vendor::parse(token) {
                if vendor_seen {
                    return err(format!("GPU spec vendor conflict: {s}"));
                }
                spec.vendor = Some(vendor);
                vendor_seen = true;
            } else if token.starts_with(|c: char| c.is_alphabetic()) {
                if name_seen {
                    return err(format!("GPU spec name conflict: {s}"));
                }
                let mut names = Vec::new();
                for name in token.split(',') {
                    if name.is_empty() {
                        return err(format!("GPU name can not be empty: {s}"));
                    }
                    names.push(strip_tpu_prefix(name).to_string());
                }
                spec.name = Some(names);
                name_seen = true;
            } else if token.chars().any(char::is_alphabetic) {
                if memory.is_some() {
                    return err(format!("GPU spec memory conflict: {s}"));
                }
                memory = Some(token);
            } else {
                if count.is_some() {
                    return err(format!("GPU spec count conflict: {s}"));
                }
                count = Some(token);
            }
        }
        if let Some(count) = count {
            spec.count = Range::parse(count)?;
        }
        if let Some(memory) = memory {
            spec.memory = Some(Range::parse(memory)?);
        }
        Ok(spec)
    }
}

/// The deprecated `tpu-v3-8` spelling names the TPU `v3-8`.
pub fn strip_tpu_prefix(name: &str) -> &str {
    match name.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("tpu-") => &name[4..],
        _ => name,
    }
}

impl fmt::Display for GpuSpec {
    /// The compact form: `A100:80GB:2`, `nvidia:24GB..:1..2`, `0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(vendor) = self.vendor
            && (self.name.is_none() || vendor != Vendor::Nvidia)
        {
            parts.push(vendor.as_str().to_string());
        }
        if let Some(names) = &self.name {
            parts.push(names.join(","));
        }
        if let Some(memory) = &self.memory {
            parts.push(memory.to_string());
        }
        if self.count != Range::at_least(1) || parts.is_empty() {
            parts.push(self.count.to_string());
        }
        if let Some(total) = &self.total_memory {
            parts.push(format!("total={total}"));
        }
        if let Some(cc) = &self.compute_capability {
            parts.push(format!("cc={cc}"));
        }
        f.write_str(&parts.join(":"))
    }
}

/// Disk requirements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DiskSpec {
    /// Disk size.
    pub size: Range<Memory>,
}

impl Default for DiskSpec {
    fn default() -> DiskSpec {
        DiskSpec {
            size: Range::at_least(Memory(100.0)),
        }
    }
}

/// All resource requirements of a job (or what a fleet's instances must have).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcesSpec {
    /// CPUs.
    pub cpu: CpuSpec,
    /// RAM.
    pub memory: Range<Memory>,
    /// Shared memory size (`/dev/shm`).
    pub shm_size: Option<Memory>,
    /// GPUs; `None` only when the user wrote `gpu: null` (the server treats it as `0..`).
    pub gpu: Option<GpuSpec>,
    /// Disk; `None` disables the requirement.
    pub disk: Option<DiskSpec>,
}

impl Default for ResourcesSpec {
    fn default() -> ResourcesSpec {
        ResourcesSpec {
            cpu: CpuSpec::default(),
            memory: Range::at_least(Memory(8.0)),
            shm_size: None,
            gpu: Some(GpuSpec::any_count_from(0)),
            disk: Some(DiskSpec::default()),
        }
    }
}

impl ResourcesSpec {
    /// What a fleet without `resources` accepts: anything.
    pub fn unconstrained() -> ResourcesSpec {
        ResourcesSpec {
            cpu: CpuSpec {
                arch: None,
                count: Range::at_least(1),
            },
            memory: Range::at_least(Memory(0.0)),
            shm_size: None,
            gpu: Some(GpuSpec::any_count_from(0)),
            disk: None,
        }
    }
}

impl Serialize for ResourcesSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ResourcesSpec", 5)?;
        st.serialize_field("cpu", &self.cpu)?;
        st.serialize_field("memory", &self.memory)?;
        st.serialize_field("shm_size", &self.shm_size)?;
        st.serialize_field("gpu", &self.gpu)?;
        st.serialize_field("disk", &self.disk)?;
        st.end()
    }
}

impl fmt::Display for ResourcesSpec {
    /// `cpu=2.. mem=8GB.. disk=100GB.. gpu=A100:80GB:2` (GPUs only when some are required).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu={} mem={}", self.cpu, self.memory)?;
        if let Some(shm) = self.shm_size {
            write!(f, " shm={shm}")?;
        }
        if let Some(disk) = &self.disk {
            write!(f, " disk={}", disk.size)?;
        }
        if let Some(gpu) = &self.gpu {
            let zero_allowed = gpu.count.min.is_none_or(|m| m == 0);
            let any = gpu.name.is_none() && gpu.memory.is_none() && gpu.vendor.is_none();
            if !(zero_allowed && any) {
                write!(f, " gpu={gpu}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(Memory::parse("512MB"), Ok(Memory(0.5)));
        assert_eq!(Memory::parse("16 Gb"), Ok(Memory(16.0)));
        assert_eq!(Memory::parse("1 TB "), Ok(Memory(1024.0)));
        assert_eq!(Memory::parse("8"), Ok(Memory(8.0)));
        assert!(Memory::parse("8G").is_err());
        assert!(Memory::parse("8GiB").is_err());
        assert_eq!(Memory(16.0).to_string(), "16GB");
        assert_eq!(Memory(0.5).to_string(), "0.5GB");
    }

    #[test]
    fn numbers_print_like_python_format_g() {
        // Each expectation is Python's `format(v, "g")`.
        let cases = [
            (16.0, "16"),
            (0.5, "0.5"),
            (0.09765625, "0.0976562"),
            (1234567.0, "1.23457e+06"),
            (999999.5, "1e+06"),
            (123456.5, "123456"),
            (100000.0, "100000"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-8.0, "-8"),
            (0.0, "0"),
            (1e16, "1e+16"),
        ];
        for (v, want) in cases {
            assert_eq!(format_g(v), want, "{v}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(
            Range::<i64>::parse("2 .. 4"),
            Ok(Range {
                min: Some(2),
                max: Some(4)
            })
        );
        assert_eq!(Range::<i64>::parse("..1").map(|r| r.max), Ok(Some(1)));
        assert!(Range::<i64>::parse("..").is_err());
        assert!(Range::<i64>::parse("3..1").is_err());
        assert!(Range::<i64>::parse("1..2..3").is_err());
        let r = Range::<Memory>::parse("16GB..8GB").expect_err("order");
        assert_eq!(r.0, "Invalid range order: 16GB..8GB");
        assert_eq!(
            Range::<i64>::parse("2..").map(|r| r.to_string()),
            Ok("2..".into())
        );
    }

    #[test]
    fn gpu_shorthand_round_trips() {
        for s in [
            "A100:80GB:2",
            "A10G,A100",
            "nvidia",
            "24GB..40GB:2",
            "amd:MI300X:8",
            "0",
            "2..",
        ] {
            let spec = GpuSpec::parse(s).expect(s);
            assert_eq!(
                GpuSpec::parse(&spec.to_string()),
                Ok(spec.clone()),
                "{s} -> {spec}"
            );
        }
        assert_eq!(
            GpuSpec::parse("A100:80GB:2").map(|g| g.to_string()),
            Ok("A100:80GB:2".into())
        );
    }

    #[test]
    fn cpu_shorthand() {
        let spec = CpuSpec::parse("x86:16..").expect("parses");
        assert_eq!(spec.arch, Some(CpuArch::X86));
        assert_eq!(spec.to_string(), "x86:16..");
        assert!(CpuSpec::parse("arm:x86").is_err());
    }

    #[test]
    fn resources_display() {
        let mut r = ResourcesSpec::default();
        assert_eq!(r.to_string(), "cpu=2.. mem=8GB.. disk=100GB..");
        r.gpu = GpuSpec::parse("A100:80GB:2").ok();
        assert_eq!(
            r.to_string(),
            "cpu=2.. mem=8GB.. disk=100GB.. gpu=A100:80GB:2"
        );
    }
}
