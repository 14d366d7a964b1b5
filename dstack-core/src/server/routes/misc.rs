//! What the original's CLI and SDK call besides runs and fleets: exports and imports, UI
//! templates, stored repos and backends. None of them can exist on this server yet (repos are
//! not stored, backends are not configurable: jobs run on the local fleet), so lists are empty,
//! named items are not found, and creating one is refused with a message that says why.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::{Value, json};

use super::super::http::{Body, Member};
use super::super::{ApiError, AppState};
use crate::api::fleets::{
    DeleteBackendsRequest, DeleteImportRequest, DeleteReposRequest, GetRepoRequest, NameRequest,
};
use crate::auth::ProjectRole;

type ApiResult = Result<Json<Value>, ApiError>;

/// The `X-API-VERSION` of the client, `None` when absent or not a release (`latest`, dev).
/// The version check in front of every route has refused unusable values already.
#[derive(Debug, Clone, Copy)]
pub(super) struct ClientVersion(Option<(u64, u64, u64)>);

impl FromRequestParts<AppState> for ClientVersion {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<ClientVersion, ApiError> {
        let version = parts
            .headers
            .get("x-api-version")
            .and_then(|h| h.to_str().ok())
            .and_then(|v| super::parse_version(v).ok().flatten());
        Ok(ClientVersion(version))
    }
}

impl ClientVersion {
    /// Whether the client predates 0.22.0, which expects bare lists from `exports/list` and
    /// `imports/list`.
    fn before_0_22(self) -> bool {
        self.0.is_some_and(|v| v < (0, 22, 0))
    }
}

/// Project admins (and global admins) only, as the original's `ProjectAdmin`.
fn project_admin(m: &Member) -> Result<(), ApiError> {
    if m.user.is_admin() || m.role == Some(ProjectRole::Admin) {
        Ok(())
    } else {
        Err(ApiError::denied())
    }
}

/// An empty listing: `{"<key>": [], "warnings": []}`, or `[]` for clients before 0.22.
fn empty_listing(version: ClientVersion, key: &str) -> Value {
    if version.before_0_22() {
        json!([])
    } else {
        json!({key: [], "warnings": []})
    }
}

const NO_EXPORTS: &str = "Exports are not supported yet: this server runs jobs on its local fleet only and has no fleets or gateways to share between projects";

/// `exports/list`: none.
pub(super) async fn list_exports(_m: Member, version: ClientVersion) -> ApiResult {
    Ok(Json(empty_listing(version, "exports")))
}

/// `exports/create`, `exports/update`: refused.
pub(super) async fn change_export(m: Member, Body(_req): Body<NameRequest>) -> ApiResult {
    project_admin(&m)?;
    Err(ApiError::client(NO_EXPORTS))
}

/// `exports/delete`: no export exists.
pub(super) async fn delete_export(m: Member, Body(req): Body<NameRequest>) -> ApiResult {
    project_admin(&m)?;
    Err(ApiError::not_exists(format!(
        "Export '{}' not found in project '{}'",
        req.name, m.project.name
    )))
}

/// `imports/list`: none.
pub(super) async fn list_imports(_m: Member, version: ClientVersion) -> ApiResult {
    Ok(Json(empty_listing(version, "imports")))
}

/// `imports/delete`: no import exists.
pub(super) async fn delete_import(m: Member, Body(req): Body<DeleteImportRequest>) -> ApiResult {
    project_admin(&m)?;
    Err(ApiError::not_exists(format!(
        "Import '{}/{}' not found in project '{}'",
        req.export_project_name, req.export_name, m.project.name
    )))
}

/// `templates/list`: no templates repo is configured.
pub(super) async fn list_templates(_m: Member) -> ApiResult {
    Ok(Json(json!([])))
}

/// `repos/list`: repos are not stored (`repos/init` keeps nothing).
pub(super) async fn list_repos(_m: Member) -> ApiResult {
    Ok(Json(json!([])))
}

/// `repos/get`: not stored, so not found; the CLI then initialises the repo again.
pub(super) async fn get_repo(_m: Member, Body(_req): Body<GetRepoRequest>) -> ApiResult {
    Err(ApiError::not_exists("Resource not found"))
}

/// `repos/delete`: nothing stored to delete.
pub(super) async fn delete_repos(_m: Member, Body(_req): Body<DeleteReposRequest>) -> ApiResult {
    Ok(Json(Value::Null))
}

const NO_BACKENDS: &str =
    "Configuring backends is not supported yet: this server runs jobs on its local fleet only";

/// `backends/list_types`: no backend type can be configured.
pub(super) async fn list_backend_types() -> ApiResult {
    Ok(Json(json!([])))
}

/// `backends/create`, `backends/update`, `backends/create_yaml`, `backends/update_yaml`:
/// refused.
pub(super) async fn change_backend(m: Member, Body(_req): Body<Value>) -> ApiResult {
    project_admin(&m)?;
    Err(ApiError::client(NO_BACKENDS))
}

/// `backends/delete`: no backend is configured, nothing to delete.
pub(super) async fn delete_backends(
    m: Member,
    Body(_req): Body<DeleteBackendsRequest>,
) -> ApiResult {
    project_admin(&m)?;
    Ok(Json(Value::Null))
}

/// `backends/{backend}/config_info`, `backends/{backend}/get_yaml`: no backend is configured.
pub(super) async fn backend_config(m: Member) -> ApiResult {
    project_admin(&m)?;
    Err(ApiError::not_exists("Resource not found"))
}

#[cfg(test)]
mod tests {
    use super::{ClientVersion, empty_listing};

    #[test]
    fn listings_by_client_version() {
        let old = ClientVersion(Some((0, 21, 9)));
        assert_eq!(empty_listing(old, "exports"), serde_json::json!([]));
        for v in [None, Some((0, 22, 0)), Some((0, 22, 5))] {
            assert_eq!(
                empty_listing(ClientVersion(v), "imports"),
                serde_json::json!({"imports": [], "warnings": []})
            );
        }
    }
}
