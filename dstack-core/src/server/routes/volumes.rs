//! Volumes: none can exist yet. Creating one is refused with a message that says so, and a
//! named volume is not found (400 `resource_not_exists`, as the original).

use axum::Json;
use serde_json::{Value, json};

use super::super::ApiError;
use super::super::http::{Auth, Body, Member, OptBody};
use crate::api::fleets::{ConfigurationRequest, ListVolumesRequest, NameRequest, NamesRequest};

type ApiResult = Result<Json<Value>, ApiError>;

/// `volumes/list` of a project: no volumes.
pub(super) async fn list(_m: Member) -> ApiResult {
    Ok(Json(json!([])))
}

/// `/api/volumes/list`: no volumes in any project.
pub(super) async fn list_all(
    Auth(_user): Auth,
    OptBody(_req): OptBody<ListVolumesRequest>,
) -> ApiResult {
    Ok(Json(json!([])))
}

/// `volumes/get`: no volume exists.
pub(super) async fn get(_m: Member, Body(_req): Body<NameRequest>) -> ApiResult {
    Err(ApiError::not_exists("Resource not found"))
}

/// `volumes/create`: refused.
pub(super) async fn create(_m: Member, Body(_req): Body<ConfigurationRequest>) -> ApiResult {
    Err(ApiError::client(
        "Volumes are not supported yet: this server runs jobs on its local fleet only",
    ))
}

/// `volumes/delete`: the names name nothing, which the original accepts silently.
pub(super) async fn delete(_m: Member, Body(_req): Body<NamesRequest>) -> ApiResult {
    Ok(Json(Value::Null))
}
