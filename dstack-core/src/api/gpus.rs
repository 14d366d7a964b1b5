//! GPU offers grouped (`POST /api/project/{p}/gpus/list`, what `dstack offer --group-by gpu`
//! shows), shaped as the original's `ListGpusRequest` and `ListGpusResponse`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A field offers are grouped by besides the GPU itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The backend.
    Backend,
    /// The region (only together with the backend).
    Region,
    /// The number of GPUs.
    Count,
}

/// `ListGpusRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct ListGpusRequest {
    /// The run spec offers are for (`dstack offer` sends a task).
    pub run_spec: Value,
    /// Grouping.
    #[serde(default)]
    pub group_by: Option<Vec<GroupBy>>,
    /// Most expensive groups first (available groups still first).
    #[serde(default)]
    pub reverse: bool,
    /// Offers not adjusted by the requirements.
    #[serde(default)]
    pub full_offers: bool,
    /// Only unallocated resources.
    #[serde(default)]
    pub unallocated_resources: bool,
}

/// `Range[int]`, `Range[float]` with both bounds known.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bounds<T> {
    /// Lower bound.
    pub min: T,
    /// Upper bound.
    pub max: T,
}

impl<T: Copy + PartialOrd> Bounds<T> {
    /// `v..v`
    pub fn exact(v: T) -> Bounds<T> {
        Bounds { min: v, max: v }
    }

    /// Widens the bounds to include `v`.
    pub fn include(&mut self, v: T) {
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
    }
}

/// `GpuGroup`: one GPU model (and, by the grouping, backend, region or count) across offers.
/// Fields that are `None` are left out, as the original leaves them out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuGroup {
    /// GPU name.
    pub name: String,
    /// Memory per GPU, MiB.
    pub memory_mib: u64,
    /// Vendor (`AcceleratorVendor`).
    pub vendor: String,
    /// Availabilities seen, in order.
    pub availability: Vec<String>,
    /// `spot` and/or `on-demand`.
    pub spot: Vec<String>,
    /// GPUs per offer.
    pub count: Bounds<u64>,
    /// Price per GPU per hour.
    pub price: Bounds<f64>,
    /// Price of whole offers per hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_price: Option<Bounds<f64>>,
    /// Backends (when not grouped by backend).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<String>>,
    /// The backend (when grouped by backend).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Regions of the backend (grouped by backend, not region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// The region (when grouped by region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `CpuGroup`: CPU-only offers, returned when the GPU count is constrained to zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuGroup {
    /// CPU architectures.
    pub cpu_arch: Vec<String>,
    /// CPUs per offer.
    pub count: Bounds<u64>,
    /// Memory per offer, MiB.
    pub memory_mib: Bounds<u64>,
    /// Price of whole offers per hour.
    pub price: Bounds<f64>,
    /// Availabilities seen, in order.
    pub availability: Vec<String>,
    /// `spot` and/or `on-demand`.
    pub spot: Vec<String>,
    /// Backends (when not grouped by backend).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<String>>,
    /// The backend (when grouped by backend).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Regions of the backend (grouped by backend, not region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// The region (when grouped by region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `ListGpusResponse`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListGpusResponse {
    /// GPU groups.
    pub gpus: Vec<GpuGroup>,
    /// CPU groups, only when the GPU count is constrained to zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Vec<CpuGroup>>,
}
