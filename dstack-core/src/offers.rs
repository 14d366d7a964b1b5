//! Offers (what an instance provides) and matching them against requirements.
//!
//! The rules follow the original's catalogue matching: inclusive ranges, the GPU block skipped
//! only when zero GPUs are acceptable and the offer has none, names compared case-insensitively,
//! the disk compared only when the offer's size is known.

use crate::resources::gpu::{nvidia_compute_capability, vendors_of};
use crate::resources::{CpuArch, GpuSpec, Memory, ResourcesSpec, Vendor};

/// One GPU of an offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    /// Catalogue name (`A100`).
    pub name: String,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// Vendor.
    pub vendor: Vendor,
}

/// What an instance type (or an existing instance) provides.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// Number of CPUs.
    pub cpus: u32,
    /// CPU architecture.
    pub cpu_arch: CpuArch,
    /// RAM in GiB.
    pub memory_gib: f64,
    /// The GPUs (all of one model).
    pub gpus: Vec<Gpu>,
    /// Disk size in GiB, when known.
    pub disk_gib: Option<f64>,
    /// Whether it is a spot instance.
    pub spot: bool,
    /// Price per hour in dollars.
    pub price: f64,
}

/// What a job needs from an offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirements {
    /// Resources.
    pub resources: ResourcesSpec,
    /// Spot instances only (`Some(true)`), on-demand only (`Some(false)`) or either.
    pub spot: Option<bool>,
    /// Maximal price per hour.
    pub max_price: Option<f64>,
}

/// Why an offer does not match (the first failing rule), for "no offers" messages.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Mismatch {
    /// Price above `max_price`.
    #[error("price ${price}/h is above max_price ${max}/h")]
    Price {
        /// The offer's price.
        price: f64,
        /// The limit.
        max: f64,
    },
    /// Spot vs on-demand.
    #[error("spot policy: the offer is {}", if *.offer_spot { "spot" } else { "on-demand" })]
    Spot {
        /// Whether the offer is spot.
        offer_spot: bool,
    },
    /// A resource is outside its requested range.
    #[error("{what}: the offer has {has}, the run requests {wants}")]
    Resource {
        /// Which resource.
        what: &'static str,
        /// What the offer has.
        has: String,
        /// What was requested.
        wants: String,
    },
}

fn mismatch(what: &'static str, has: impl ToString, wants: impl ToString) -> Mismatch {
    Mismatch::Resource {
        what,
        has: has.to_string(),
        wants: wants.to_string(),
    }
}

/// Checks an offer against requirements; `Err` says which rule failed first.
pub fn check_offer(offer: &Offer, req: &Requirements) -> Result<(), Mismatch> {
    if let Some(max) = req.max_price
        && offer.price > max
    {
        return Err(Mismatch::Price {
            price: offer.price,
            max,
        });
    }
    if let Some(spot) = req.spot
        && spot != offer.spot
    {
        return Err(Mismatch::Spot {
            offer_spot: offer.spot,
        });
    }
    let r = &req.resources;
    if let Some(arch) = r.cpu.arch
        && arch != offer.cpu_arch
    {
        return Err(mismatch(
            "cpu architecture",
            offer.cpu_arch.as_str(),
            arch.as_str(),
        ));
    }
    if !r.cpu.count.contains(i64::from(offer.cpus)) {
        return Err(mismatch("cpu", offer.cpus, r.cpu.count));
    }
    if !r.memory.contains(Memory(offer.memory_gib)) {
        return Err(mismatch("memory", Memory(offer.memory_gib), r.memory));
    }
    let default_gpu = GpuSpec::any_count_from(0);
    let gpu = r.gpu.as_ref().unwrap_or(&default_gpu);
    check_gpus(offer, gpu)?;
    if let (Some(disk), Some(size)) = (&r.disk, offer.disk_gib)
        && !disk.size.contains(Memory(size))
    {
        return Err(mismatch("disk", Memory(size), disk.size));
    }
    Ok(())
}

/// Whether an offer satisfies the requirements.
pub fn matches(offer: &Offer, req: &Requirements) -> bool {
    check_offer(offer, req).is_ok()
}

fn check_gpus(offer: &Offer, spec: &GpuSpec) -> Result<(), Mismatch> {
    let count = offer.gpus.len() as i64;
    if spec.count.min.unwrap_or(0) == 0 && count == 0 {
        return Ok(());
    }
    let first = offer.gpus.first();
    if let Some(vendor) = spec.vendor
        && first.map(|g| g.vendor) != Some(vendor)
    {
        let has = first.map_or("no GPU", |g| g.vendor.as_str());
        return Err(mismatch("gpu vendor", has, vendor.as_str()));
    }
    if !spec.count.contains(count) {
        return Err(mismatch("gpu count", count, spec.count));
    }
    if let Some(names) = &spec.name {
        let ok = first.is_some_and(|g| names.iter().any(|n| n.eq_ignore_ascii_case(&g.name)));
        if !ok {
            return Err(mismatch(
                "gpu",
                first.map_or("no GPU", |g| g.name.as_str()),
                names.join(","),
            ));
        }
    }
    if let Some(cc) = spec.compute_capability {
        let has = first
            .filter(|g| g.vendor == Vendor::Nvidia)
            .and_then(|g| nvidia_compute_capability(&g.name));
        if has.is_none_or(|h| h < cc) {
            return Err(mismatch(
                "compute capability",
                has.map_or("unknown".into(), |h| h.to_string()),
                cc,
            ));
        }
    }
    let per_gpu = first.map_or(0.0, |g| g.memory_gib);
    if let Some(memory) = &spec.memory
        && !memory.contains(Memory(per_gpu))
    {
        return Err(mismatch("gpu memory", Memory(per_gpu), memory));
    }
    if let Some(total) = &spec.total_memory {
        let sum = per_gpu * count as f64;
        if !total.contains(Memory(sum)) {
            return Err(mismatch("gpu total memory", Memory(sum), total));
        }
    }
    Ok(())
}

/// Whether one GPU satisfies a GPU spec's vendor, name, memory and compute capability
/// (counts are not considered); used for GPUs reported by hosts.
pub fn gpu_matches_spec(gpu: &Gpu, spec: &GpuSpec) -> bool {
    if spec.vendor.is_some_and(|v| v != gpu.vendor) {
        return false;
    }
    if let Some(names) = &spec.name
        && !names.iter().any(|n| n.eq_ignore_ascii_case(&gpu.name))
    {
        return false;
    }
    if let Some(memory) = &spec.memory
        && !memory.contains(Memory(gpu.memory_gib))
    {
        return false;
    }
    if let Some(cc) = spec.compute_capability {
        if gpu.vendor != Vendor::Nvidia {
            return false;
        }
        match nvidia_compute_capability(&gpu.name) {
            Some(has) if has >= cc => {}
            _ => return false,
        }
    }
    true
}

/// The vendor of a GPU name, when exactly one vendor makes it.
pub fn vendor_of(name: &str) -> Option<Vendor> {
    match vendors_of(name)[..] {
        [v] => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Range;

    fn offer(cpus: u32, mem: f64, gpus: usize) -> Offer {
        Offer {
            cpus,
            cpu_arch: CpuArch::X86,
            memory_gib: mem,
            gpus: vec![
                Gpu {
                    name: "A100".into(),
                    memory_gib: 80.0,
                    vendor: Vendor::Nvidia
                };
                gpus
            ],
            disk_gib: None,
            spot: false,
            price: 1.0,
        }
    }

    fn req(resources: ResourcesSpec) -> Requirements {
        Requirements {
            resources,
            spot: None,
            max_price: None,
        }
    }

    #[test]
    fn default_resources_accept_cpu_and_gpu_offers() {
        let r = req(ResourcesSpec::default());
        assert!(matches(&offer(4, 16.0, 0), &r));
        assert!(matches(&offer(8, 64.0, 1), &r));
        assert!(!matches(&offer(4, 4.0, 0), &r));
    }

    #[test]
    fn explains_mismatches() {
        let spec = ResourcesSpec {
            gpu: Some(GpuSpec {
                count: Range::exact(2),
                ..GpuSpec::any_count_from(1)
            }),
            ..ResourcesSpec::default()
        };
        let err = check_offer(&offer(8, 64.0, 1), &req(spec)).expect_err("one GPU is not two");
        assert_eq!(
            err.to_string(),
            "gpu count: the offer has 1, the run requests 2"
        );
    }
}
