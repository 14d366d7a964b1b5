//! Decoding of `resources` (and its parts) from nodes: shorthand strings, numbers and mappings.

use super::decode::{self, Cx, D, fields};
use super::node::{Node, Value};
use crate::resources::{
    Bound, ComputeCapability, CpuArch, CpuSpec, DiskSpec, GpuSpec, Memory, Range, ResourcesSpec,
    Vendor, strip_tpu_prefix,
};

const MEMORY_HELP: &str = "a size is a number of GB, or a number with `MB`, `GB` or `TB` (`512MB`, `16GB`, `1TB`); a range is `8GB..16GB`, `24GB..` or `..80GB`";
const GPU_HELP: &str = "write GPUs as `A100`, `A100:80GB:2`, `A10G,A100:2`, `24GB..:2`, `nvidia:1..2` or `amd:MI300X:8`";
const CPU_HELP: &str = "write CPUs as `8`, `4..16`, `x86:16..` or `arm:8`";

/// A memory size: a number of gigabytes or `512MB` / `16GB` / `1TB`.
pub fn memory(cx: &mut Cx, n: &Node) -> D<Memory> {
    match &n.value {
        Value::Int(i) => Ok(Memory(*i as f64)),
        Value::Float(f) => Ok(Memory(*f)),
        Value::Str(s) => Memory::parse(s).map_err(|e| cx.error(n, e.0)),
        _ => Err(cx.error(
            n,
            format!("expected a memory size like `16GB`, got {}", n.kind_name()),
        )),
    }
}

fn int_bound(cx: &mut Cx, n: &Node) -> D<i64> {
    decode::integer(cx, n)
}

/// A range of integers: `2`, `"1..4"`, `"2.."`, `{min: 1, max: 3}`.
pub fn range_int(cx: &mut Cx, n: &Node) -> D<Range<i64>> {
    range(cx, n, int_bound)
}

/// A range of memory sizes: `24GB`, `"8GB..16GB"`, `{min: 8GB}`.
pub fn range_memory(cx: &mut Cx, n: &Node) -> D<Range<Memory>> {
    range(cx, n, memory)
}

fn range<T: Bound>(cx: &mut Cx, n: &Node, bound: fn(&mut Cx, &Node) -> D<T>) -> D<Range<T>> {
    match &n.value {
        Value::Str(s) => Range::parse(s).map_err(|e| {
            if std::any::type_name::<T>().ends_with("Memory") {
                cx.error_help(n, e.0, MEMORY_HELP.into())
            } else {
                cx.error(n, e.0)
            }
        }),
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { min, max });
            let min = decode::opt(cx, "min", f.min, bound);
            let max = decode::opt(cx, "max", f.max, bound);
            ok?;
            Range {
                min: min?,
                max: max?,
            }
            .validated()
            .map_err(|e| cx.error(n, e.0))
        }
        Value::Int(_) | Value::Float(_) => Ok(Range::exact(bound(cx, n)?)),
        _ => Err(cx.error(
            n,
            format!("expected a range like `1..4`, got {}", n.kind_name()),
        )),
    }
}

/// `cpu`: `8`, `"x86:16.."`, `{arch, count}` or a `{min, max}` count range.
pub fn cpu(cx: &mut Cx, n: &Node) -> D<CpuSpec> {
    match &n.value {
        // A number is read as its text (`-1` is then an invalid architecture, as in the original).
        Value::Int(i) => {
            CpuSpec::parse(&i.to_string()).map_err(|e| cx.error_help(n, e.0, CPU_HELP.into()))
        }
        Value::Str(s) => CpuSpec::parse(s).map_err(|e| cx.error_help(n, e.0, CPU_HELP.into())),
        Value::Map(entries) => {
            let is_range = !entries.is_empty()
                && entries
                    .iter()
                    .all(|(k, _)| matches!(k.as_str(), Some("min" | "max")));
            if is_range {
                return Ok(CpuSpec {
                    arch: None,
                    count: range_int(cx, n)?,
                });
            }
            let (ok, f) = fields!(cx, n, [], { arch, count });
            let arch = decode::opt(cx, "arch", f.arch, |cx, n| {
                let s = decode::string(cx, n)?;
                CpuArch::parse(&s).ok_or_else(|| cx.error(n, "Input should be 'x86' or 'arm'"))
            });
            let count = decode::def(cx, "count", f.count, || Range::at_least(2), range_int);
            ok?;
            Ok(CpuSpec {
                arch: arch?,
                count: count?,
            })
        }
        _ => Err(cx.error(
            n,
            format!("expected a CPU spec like `x86:16..`, got {}", n.kind_name()),
        )),
    }
}

fn vendor(cx: &mut Cx, n: &Node) -> D<Vendor> {
    let s = decode::string(cx, n)?;
    Vendor::parse(&s).ok_or_else(|| {
        cx.error_help(
            n,
            format!("'{s}' is not a valid AcceleratorVendor"),
            "use one of `nvidia`, `amd`, `google` (`tpu`), `intel`, `tenstorrent` (`tt`)".into(),
        )
    })
}

fn gpu_names(cx: &mut Cx, n: &Node) -> D<Vec<String>> {
    match &n.value {
        Value::Seq(_) => decode::list(cx, n, |cx, n| {
            Ok(strip_tpu_prefix(&decode::string(cx, n)?).to_string())
        }),
        _ => Ok(vec![strip_tpu_prefix(&decode::string(cx, n)?).to_string()]),
    }
}

/// `compute_capability`: `"7.5"`, `7.5` or `[7, 5]`.
pub fn compute_capability(cx: &mut Cx, n: &Node) -> D<ComputeCapability> {
    let invalid = |cx: &mut Cx| cx.error(n, format!("Invalid compute capability: {n}"));
    match &n.value {
        Value::Str(_) | Value::Float(_) => {
            let text = n.scalar_text().unwrap_or_default();
            ComputeCapability::parse(&text).map_err(|_| invalid(cx))
        }
        Value::Seq(items) if items.len() == 2 => {
            let major = decode::integer(cx, &items[0])?;
            let minor = decode::integer(cx, &items[1])?;
            match (u32::try_from(major), u32::try_from(minor)) {
                (Ok(a), Ok(b)) => Ok(ComputeCapability(a, b)),
                _ => Err(invalid(cx)),
            }
        }
        _ => Err(invalid(cx)),
    }
}

/// `gpu`: a shorthand (`A100:80GB:2`, `24GB..`, `2`) or a mapping.
pub fn gpu(cx: &mut Cx, n: &Node) -> D<GpuSpec> {
    match &n.value {
        Value::Str(_) | Value::Int(_) | Value::Float(_) => {
            let text = n.scalar_text().unwrap_or_default();
            GpuSpec::parse(&text).map_err(|e| cx.error_help(n, e.0, GPU_HELP.into()))
        }
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { vendor, name, count, memory, total_memory, compute_capability });
            let vendor = decode::opt(cx, "vendor", f.vendor, vendor);
            let name = decode::opt(cx, "name", f.name, gpu_names);
            let count = decode::def(cx, "count", f.count, || Range::at_least(1), range_int);
            let memory = decode::opt(cx, "memory", f.memory, range_memory);
            let total_memory = decode::opt(cx, "total_memory", f.total_memory, range_memory);
            let cc = decode::opt(
                cx,
                "compute_capability",
                f.compute_capability,
                compute_capability,
            );
            ok?;
            Ok(GpuSpec {
                vendor: vendor?,
                name: name?,
                count: count?,
                memory: memory?,
                total_memory: total_memory?,
                compute_capability: cc?,
            })
        }
        _ => Err(cx.error(
            n,
            format!(
                "expected a GPU spec like `A100:80GB:2`, got {}",
                n.kind_name()
            ),
        )),
    }
}

/// `disk`: a size range or `{size: ...}`.
pub fn disk(cx: &mut Cx, n: &Node) -> D<DiskSpec> {
    match &n.value {
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { size });
            let size = decode::req(cx, n, "size", f.size, range_memory);
            ok?;
            Ok(DiskSpec { size: size? })
        }
        _ => Ok(DiskSpec {
            size: range_memory(cx, n)?,
        }),
    }
}

/// The whole `resources` mapping; omitted parts take the defaults.
pub fn resources(cx: &mut Cx, n: &Node) -> D<ResourcesSpec> {
    let (ok, f) = fields!(cx, n, [], { cpu, memory, shm_size, gpu, disk });
    let d = ResourcesSpec::default();
    let cpu = decode::def(cx, "cpu", f.cpu, || d.cpu, cpu);
    let mem = decode::def(cx, "memory", f.memory, || d.memory, range_memory);
    let shm_size = decode::opt(cx, "shm_size", f.shm_size, memory);
    let gpu = match f.gpu {
        None => Ok(d.gpu.clone()),
        Some(_) => decode::opt(cx, "gpu", f.gpu, gpu),
    };
    let disk = match f.disk {
        None => Ok(d.disk),
        Some(_) => decode::opt(cx, "disk", f.disk, disk),
    };
    ok?;
    Ok(ResourcesSpec {
        cpu: cpu?,
        memory: mem?,
        shm_size: shm_size?,
        gpu: gpu?,
        disk: disk?,
    })
}
