//! `gpus/list` (`dstack offer --group-by gpu`): the backend's offers for a run spec, grouped
//! by GPU model and optionally backend, region and count, as the original groups and sorts
//! them; CPU-only groups when the spec asks for no GPUs.

use axum::Json;
use axum::extract::State;

use super::super::http::{Body, Member};
use super::super::{ApiError, AppState, submit, views};
use crate::api::gpus::{Bounds, CpuGroup, GpuGroup, GroupBy, ListGpusRequest, ListGpusResponse};
use crate::api::runs::InstanceOffer;

/// What groups are keyed by besides the GPU model.
#[derive(Debug, Clone, Copy, Default)]
struct Grouping {
    backend: bool,
    region: bool,
    count: bool,
}

/// `InstanceAvailability.is_available()`
fn available(a: &str) -> bool {
    matches!(a, "unknown" | "available" | "idle")
}

fn spot_text(spot: bool) -> String {
    if spot { "spot" } else { "on-demand" }.to_string()
}

/// One GPU configuration of one backend's offers (`BackendGpu`).
#[derive(Debug, Clone)]
struct BackendGpu {
    name: String,
    memory_mib: u64,
    vendor: String,
    availability: String,
    spot: bool,
    count: u64,
    price: f64,
    region: String,
}

/// The GPU configurations of one backend and its regions (`BackendGpus`).
#[derive(Debug, Clone)]
struct BackendGpus {
    backend: String,
    gpus: Vec<BackendGpu>,
    regions: Vec<String>,
}

/// The vendor of a GPU: the offer's, else the one its name says (NVIDIA when unknown).
fn vendor_of(gpu: &crate::api::runs::Gpu) -> String {
    gpu.vendor.clone().unwrap_or_else(|| {
        crate::resources::gpu::vendors_of(&gpu.name)
            .first()
            .map_or("nvidia", |v| v.as_str())
            .to_string()
    })
}

/// Offers per backend, in the order backends first appear; each GPU configuration (model,
/// count in the offer, spot, region) once, from its first offer.
fn backend_gpus(offers: &[InstanceOffer]) -> Vec<BackendGpus> {
    let mut out: Vec<BackendGpus> = Vec::new();
    for offer in offers {
        let idx = match out.iter().position(|b| b.backend == offer.backend) {
            Some(i) => i,
            None => {
                out.push(BackendGpus {
                    backend: offer.backend.clone(),
                    gpus: Vec::new(),
                    regions: Vec::new(),
                });
                out.len() - 1
            }
        };
        let b = &mut out[idx];
        if !b.regions.contains(&offer.region) {
            b.regions.push(offer.region.clone());
        }
        let resources = &offer.instance.resources;
        let mut kinds: Vec<((String, u64, String), u64)> = Vec::new();
        for gpu in &resources.gpus {
            let key = (gpu.name.clone(), gpu.memory_mib, vendor_of(gpu));
            match kinds.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => kinds.push((key, 1)),
            }
        }
        for ((name, memory_mib, vendor), count) in kinds {
            let seen = b.gpus.iter().any(|g| {
                g.name == name
                    && g.memory_mib == memory_mib
                    && g.vendor == vendor
                    && g.count == count
                    && g.spot == resources.spot
                    && g.region == offer.region
            });
            if !seen {
                b.gpus.push(BackendGpu {
                    name,
                    memory_mib,
                    vendor,
                    availability: offer.availability.clone(),
                    spot: resources.spot,
                    count,
                    price: offer.price,
                    region: offer.region.clone(),
                });
            }
        }
    }
    for b in &mut out {
        b.regions.sort();
        b.gpus.sort_by(|x, y| {
            (
                !available(&x.availability),
                &x.vendor,
                &x.name,
                x.memory_mib,
            )
                .cmp(&(
                    !available(&y.availability),
                    &y.vendor,
                    &y.name,
                    y.memory_mib,
                ))
        });
    }
    out
}

fn any_available(availability: &[String]) -> bool {
    availability.iter().any(|a| available(a))
}

/// GPU groups of the offers, sorted available first, then by price per GPU and the grouping's
/// fields; `reverse` puts the most expensive whole offers first (available still first).
fn gpu_groups(offers: &[InstanceOffer], by: Grouping, reverse: bool) -> Vec<GpuGroup> {
    let mut rows: Vec<GpuGroup> = Vec::new();
    for b in backend_gpus(offers) {
        for g in &b.gpus {
            let per_gpu = g.price / g.count as f64;
            let row = rows.iter_mut().find(|r| {
                r.name == g.name
                    && r.memory_mib == g.memory_mib
                    && r.vendor == g.vendor
                    && (!by.backend || r.backend.as_deref() == Some(b.backend.as_str()))
                    && (!by.region || r.region.as_deref() == Some(g.region.as_str()))
                    && (!by.count || r.count.min == g.count)
            });
            let Some(row) = row else {
                rows.push(GpuGroup {
                    name: g.name.clone(),
                    memory_mib: g.memory_mib,
                    vendor: g.vendor.clone(),
                    availability: vec![g.availability.clone()],
                    spot: vec![spot_text(g.spot)],
                    count: Bounds::exact(g.count),
                    price: Bounds::exact(per_gpu),
                    offer_price: Some(Bounds::exact(g.price)),
                    backends: (!by.backend).then(|| vec![b.backend.clone()]),
                    backend: by.backend.then(|| b.backend.clone()),
                    regions: (by.backend && !by.region).then(|| b.regions.clone()),
                    region: by.region.then(|| g.region.clone()),
                });
                continue;
            };
            if !row.availability.contains(&g.availability) {
                row.availability.push(g.availability.clone());
            }
            let spot = spot_text(g.spot);
            if !row.spot.contains(&spot) {
                row.spot.push(spot);
            }
            if let Some(backends) = &mut row.backends
                && !backends.contains(&b.backend)
            {
                backends.push(b.backend.clone());
            }
            row.count.include(g.count);
            row.price.include(per_gpu);
            if let Some(p) = &mut row.offer_price {
                p.include(g.price);
            }
        }
    }
    rows.sort_by(|x, y| {
        let mut o = any_available(&y.availability).cmp(&any_available(&x.availability));
        o = o
            .then(x.price.min.total_cmp(&y.price.min))
            .then(x.price.max.total_cmp(&y.price.max));
        if by.backend {
            o = o.then_with(|| x.backend.cmp(&y.backend));
        }
        if by.region {
            o = o.then_with(|| x.region.cmp(&y.region));
        }
        if by.count {
            o = o.then(x.count.min.cmp(&y.count.min));
        }
        o.then_with(|| x.name.cmp(&y.name))
            .then(x.memory_mib.cmp(&y.memory_mib))
    });
    if reverse {
        let whole = |g: &GpuGroup| g.offer_price.unwrap_or(g.price);
        rows.sort_by(|x, y| {
            any_available(&y.availability)
                .cmp(&any_available(&x.availability))
                .then(whole(y).min.total_cmp(&whole(x).min))
                .then(whole(y).max.total_cmp(&whole(x).max))
        });
    }
    rows
}

fn sorted_unique<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = items.cloned().collect();
    out.sort();
    out.dedup();
    out
}

/// CPU-only groups of the offers without GPUs.
fn cpu_groups(offers: &[InstanceOffer], by: Grouping, reverse: bool) -> Vec<CpuGroup> {
    type Key = (Option<String>, Option<String>, Option<u32>);
    let mut groups: Vec<(Key, Vec<&InstanceOffer>)> = Vec::new();
    for offer in offers
        .iter()
        .filter(|o| o.instance.resources.gpus.is_empty())
    {
        let key = (
            by.backend.then(|| offer.backend.clone()),
            by.region.then(|| offer.region.clone()),
            by.count.then_some(offer.instance.resources.cpus),
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(offer),
            None => groups.push((key, vec![offer])),
        }
    }
    let mut rows: Vec<CpuGroup> = groups
        .into_iter()
        .filter_map(|((backend, region, _), group)| {
            let first = group.first()?;
            let mut count = Bounds::exact(u64::from(first.instance.resources.cpus));
            let mut memory = Bounds::exact(first.instance.resources.memory_mib);
            let mut price = Bounds::exact(first.price);
            let mut availability: Vec<String> = Vec::new();
            for o in &group {
                let res = &o.instance.resources;
                count.include(u64::from(res.cpus));
                memory.include(res.memory_mib);
                price.include(o.price);
                if !availability.contains(&o.availability) {
                    availability.push(o.availability.clone());
                }
            }
            let spots: Vec<String> = group
                .iter()
                .map(|o| spot_text(o.instance.resources.spot))
                .collect();
            let arches: Vec<String> = group
                .iter()
                .filter_map(|o| o.instance.resources.cpu_arch.clone())
                .collect();
            Some(CpuGroup {
                cpu_arch: sorted_unique(arches.iter()),
                count,
                memory_mib: memory,
                price,
                availability,
                spot: sorted_unique(spots.iter()),
                backends: backend
                    .is_none()
                    .then(|| sorted_unique(group.iter().map(|o| &o.backend))),
                regions: (backend.is_some() && region.is_none())
                    .then(|| sorted_unique(group.iter().map(|o| &o.region))),
                backend,
                region,
            })
        })
        .collect();
    let sign = if reverse { -1.0 } else { 1.0 };
    rows.sort_by(|x, y| {
        any_available(&y.availability)
            .cmp(&any_available(&x.availability))
            .then((sign * x.price.min).total_cmp(&(sign * y.price.min)))
            .then((sign * x.price.max).total_cmp(&(sign * y.price.max)))
            .then_with(|| {
                x.backend
                    .as_deref()
                    .unwrap_or("")
                    .cmp(y.backend.as_deref().unwrap_or(""))
            })
            .then_with(|| {
                x.region
                    .as_deref()
                    .unwrap_or("")
                    .cmp(y.region.as_deref().unwrap_or(""))
            })
            .then(x.count.min.cmp(&y.count.min))
    });
    rows
}

/// `POST /api/project/{p}/gpus/list`
pub(super) async fn list(
    State(state): State<AppState>,
    _m: Member,
    Body(req): Body<ListGpusRequest>,
) -> Result<Json<ListGpusResponse>, ApiError> {
    let fields = req.group_by.unwrap_or_default();
    let by = Grouping {
        backend: fields.contains(&GroupBy::Backend),
        region: fields.contains(&GroupBy::Region),
        count: fields.contains(&GroupBy::Count),
    };
    if by.region && !by.backend {
        return Err(ApiError::client(
            "Cannot group by 'region' without also grouping by 'backend'",
        ));
    }
    let sub = submit::parse(&req.run_spec)?;
    let name = sub.run_name.clone().unwrap_or_else(|| "offers".into());
    let input = sub.input(&name, &state.default_python);
    let job = crate::jobspec::plan_job_spec(&input).map_err(|e| ApiError::client(e.0))?;
    let offers: Vec<InstanceOffer> = state
        .backend
        .offers(&job)
        .unwrap_or_default()
        .iter()
        .map(views::offer)
        .collect();
    let no_gpus = job
        .requirements
        .resources
        .gpu
        .as_ref()
        .is_some_and(|g| g.count.max == Some(0));
    Ok(Json(if no_gpus {
        ListGpusResponse {
            gpus: Vec::new(),
            cpus: Some(cpu_groups(&offers, by, req.reverse)),
        }
    } else {
        ListGpusResponse {
            gpus: gpu_groups(&offers, by, req.reverse),
            cpus: None,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::{Grouping, cpu_groups, gpu_groups};
    use crate::api::runs::{Disk, Gpu, InstanceOffer, InstanceType, Resources};

    fn offer(
        backend: &str,
        region: &str,
        gpus: &[(&str, u64)],
        price: f64,
        busy: bool,
    ) -> InstanceOffer {
        InstanceOffer {
            backend: backend.into(),
            instance: InstanceType {
                name: "t".into(),
                resources: Resources {
                    cpus: 4,
                    memory_mib: 8192,
                    gpus: gpus
                        .iter()
                        .map(|(n, m)| Gpu {
                            name: (*n).into(),
                            memory_mib: *m,
                            vendor: None,
                        })
                        .collect(),
                    spot: false,
                    disk: Disk { size_mib: 102400 },
                    cpu_arch: Some("x86".into()),
                    description: String::new(),
                },
            },
            region: region.into(),
            price,
            backend_data: serde_json::Map::new(),
            availability: if busy { "busy" } else { "idle" }.into(),
            availability_zones: None,
            instance_runtime: "runner".into(),
            blocks: 1,
            total_blocks: 1,
        }
    }

    #[test]
    fn groups_like_the_original() {
        let offers = vec![
            offer(
                "aws",
                "us-east-1",
                &[("A100", 81920), ("A100", 81920)],
                4.0,
                false,
            ),
            offer("gcp", "us-central1", &[("A100", 81920)], 3.0, false),
            offer("aws", "eu-west-1", &[("T4", 16384)], 0.5, true),
            offer("aws", "us-east-1", &[], 0.1, false),
        ];
        let flat = gpu_groups(&offers, Grouping::default(), false);
        assert_eq!(flat.len(), 2);
        // Available first: A100 (idle) before T4 (busy).
        assert_eq!(flat[0].name, "A100");
        assert_eq!(flat[0].vendor, "nvidia");
        assert_eq!(
            flat[0].backends.as_deref(),
            Some(&["aws".to_string(), "gcp".to_string()][..])
        );
        assert_eq!((flat[0].count.min, flat[0].count.max), (1, 2));
        assert_eq!((flat[0].price.min, flat[0].price.max), (2.0, 3.0));
        let offer_price = flat[0].offer_price.expect("offer price");
        assert_eq!((offer_price.min, offer_price.max), (3.0, 4.0));
        assert!(flat[0].backend.is_none() && flat[0].regions.is_none());

        let by_backend = Grouping {
            backend: true,
            ..Grouping::default()
        };
        let rows = gpu_groups(&offers, by_backend, false);
        let names: Vec<_> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.backend.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("A100", Some("aws")),
                ("A100", Some("gcp")),
                ("T4", Some("aws"))
            ]
        );
        assert_eq!(
            rows[0].regions.as_deref(),
            Some(&["eu-west-1".to_string(), "us-east-1".to_string()][..])
        );
        assert!(rows[0].backends.is_none());

        let by_count = Grouping {
            count: true,
            ..Grouping::default()
        };
        let rows = gpu_groups(&offers, by_count, false);
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].count.min, rows[0].price.min), (2, 2.0));
        assert_eq!((rows[1].count.min, rows[1].price.min), (1, 3.0));

        let reversed = gpu_groups(&offers, by_backend, true);
        assert_eq!(reversed[0].backend.as_deref(), Some("aws"));
        assert_eq!(reversed[0].name, "A100");
        assert_eq!(reversed[2].name, "T4");

        let all = Grouping {
            backend: true,
            region: true,
            count: true,
        };
        let rows = gpu_groups(&offers, all, false);
        assert!(
            rows.iter()
                .all(|r| r.region.is_some() && r.regions.is_none())
        );

        let cpus = cpu_groups(&offers, Grouping::default(), false);
        assert_eq!(cpus.len(), 1);
        assert_eq!(cpus[0].backends.as_deref(), Some(&["aws".to_string()][..]));
        assert_eq!(cpus[0].cpu_arch, ["x86"]);
        assert_eq!(cpus[0].spot, ["on-demand"]);
    }

    #[test]
    fn serialises_without_unset_fields() {
        let offers = vec![offer("remote", "local", &[("L4", 23034)], 0.0, false)];
        let rows = gpu_groups(&offers, Grouping::default(), false);
        let v = serde_json::to_value(&rows[0]).expect("json");
        assert_eq!(v["count"], serde_json::json!({"min": 1, "max": 1}));
        assert!(v.get("backend").is_none() && v.get("region").is_none());
        assert_eq!(v["backends"], serde_json::json!(["remote"]));
    }
}
