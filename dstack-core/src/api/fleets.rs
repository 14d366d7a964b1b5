//! Requests about fleets, instances, gateways, volumes, repos, exports and imports, as the
//! original's CLI and SDK send them. Unknown fields are ignored and optional fields default, so
//! bodies of other client versions are read too; a missing required field is a 422.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

fn default_page() -> u64 {
    100
}

fn default_instances_page() -> u64 {
    1000
}

/// `ListProjectFleetsRequest`
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListProjectFleetsRequest {
    /// Also fleets imported from other projects.
    #[serde(default)]
    pub include_imported: bool,
}

/// `ListFleetsRequest` (`/api/fleets/list`, every visible project).
#[derive(Debug, Clone, Deserialize)]
pub struct ListFleetsRequest {
    /// Only this project.
    #[serde(default)]
    pub project_name: Option<String>,
    /// Only fleets that are not deleted.
    #[serde(default)]
    pub only_active: bool,
    /// Also imported fleets.
    #[serde(default)]
    pub include_imported: bool,
    /// Paging: `created_at` of the last fleet of the previous page.
    #[serde(default)]
    pub prev_created_at: Option<DateTime<Utc>>,
    /// Paging: `id` of the last fleet of the previous page.
    #[serde(default)]
    pub prev_id: Option<String>,
    /// Page size (0..=100).
    #[serde(default = "default_page")]
    pub limit: u64,
    /// Oldest first.
    #[serde(default)]
    pub ascending: bool,
}

impl Default for ListFleetsRequest {
    fn default() -> ListFleetsRequest {
        ListFleetsRequest {
            project_name: None,
            only_active: false,
            include_imported: false,
            prev_created_at: None,
            prev_id: None,
            limit: default_page(),
            ascending: false,
        }
    }
}

/// `GetFleetRequest`: by name or by id.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GetFleetRequest {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
}

/// A plan request with a spec (`GetFleetPlanRequest`, `GetGatewayPlanRequest`).
#[derive(Debug, Clone, Deserialize)]
pub struct SpecRequest {
    /// `FleetSpec` or `GatewaySpec`: `{"configuration": ..., "configuration_path": ...}`.
    pub spec: Value,
}

/// The plan inside an apply request (`ApplyFleetPlanInput`, `ApplyGatewayPlanInput`).
#[derive(Debug, Clone, Deserialize)]
pub struct ApplyPlanInput {
    /// The spec.
    pub spec: Value,
    /// The resource the plan was made against.
    #[serde(default)]
    pub current_resource: Option<Value>,
}

/// `ApplyFleetPlanRequest`, `ApplyGatewayPlanRequest`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApplyPlanRequest {
    /// The plan.
    pub plan: ApplyPlanInput,
    /// Apply even if the current resource changed since the plan.
    #[serde(default)]
    pub force: bool,
}

/// A request with a configuration (`CreateGatewayRequest`, `CreateVolumeRequest`).
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigurationRequest {
    /// The configuration.
    pub configuration: Value,
}

/// A request naming resources (`DeleteFleetsRequest`, `DeleteGatewaysRequest`,
/// `DeleteVolumesRequest`).
#[derive(Debug, Clone, Deserialize)]
pub struct NamesRequest {
    /// Names.
    pub names: Vec<String>,
}

/// A request naming one resource (`GetGatewayRequest`, `GetVolumeRequest`,
/// `DeleteExportRequest`).
#[derive(Debug, Clone, Deserialize)]
pub struct NameRequest {
    /// Name.
    pub name: String,
}

/// `DeleteFleetInstancesRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteFleetInstancesRequest {
    /// The fleet.
    pub name: String,
    /// Instance numbers within it.
    pub instance_nums: Vec<i64>,
}

/// `ListInstancesRequest` (`/api/instances/list`).
#[derive(Debug, Clone, Deserialize)]
pub struct ListInstancesRequest {
    /// Only these projects.
    #[serde(default)]
    pub project_names: Option<Vec<String>>,
    /// Only these fleets.
    #[serde(default)]
    pub fleet_ids: Option<Vec<String>>,
    /// Only instances that are not deleted.
    #[serde(default)]
    pub only_active: bool,
    /// Also instances of imported fleets.
    #[serde(default)]
    pub include_imported: bool,
    /// Paging: `created` of the last instance of the previous page.
    #[serde(default)]
    pub prev_created_at: Option<DateTime<Utc>>,
    /// Paging: `id` of the last instance of the previous page.
    #[serde(default)]
    pub prev_id: Option<String>,
    /// Page size.
    #[serde(default = "default_instances_page")]
    pub limit: u64,
    /// Oldest first.
    #[serde(default)]
    pub ascending: bool,
}

impl Default for ListInstancesRequest {
    fn default() -> ListInstancesRequest {
        ListInstancesRequest {
            project_names: None,
            fleet_ids: None,
            only_active: false,
            include_imported: false,
            prev_created_at: None,
            prev_id: None,
            limit: default_instances_page(),
            ascending: false,
        }
    }
}

/// `GetInstanceRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct GetInstanceRequest {
    /// Instance id.
    pub id: String,
}

/// `GetInstanceHealthChecksRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct GetInstanceHealthChecksRequest {
    /// The fleet.
    pub fleet_name: String,
    /// The instance number within it.
    pub instance_num: i64,
}

/// `SetDefaultGatewayRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct SetDefaultGatewayRequest {
    /// The gateway.
    pub name: String,
    /// The project it belongs to, when imported.
    #[serde(default)]
    pub gateway_project: Option<String>,
}

/// `SetWildcardDomainRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct SetWildcardDomainRequest {
    /// The gateway.
    pub name: String,
    /// The domain.
    pub wildcard_domain: String,
}

/// `ListVolumesRequest` (`/api/volumes/list`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListVolumesRequest {
    /// Only this project.
    #[serde(default)]
    pub project_name: Option<String>,
}

/// `GetRepoRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct GetRepoRequest {
    /// The repo.
    pub repo_id: String,
    /// Include the credentials.
    #[serde(default)]
    pub include_creds: bool,
}

/// `DeleteReposRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteReposRequest {
    /// The repos.
    pub repos_ids: Vec<String>,
}

/// `DeleteImportRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteImportRequest {
    /// The export's name.
    pub export_name: String,
    /// The exporting project.
    pub export_project_name: String,
}

/// `DeleteBackendsRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteBackendsRequest {
    /// Backend types.
    pub backends_names: Vec<String>,
}
