//! Gateways: none can exist yet. Services are published by the server itself, at
//! `/proxy/services/<project>/<run>/`; creating a gateway is refused with a message that says
//! so, and a named gateway is not found (400 `resource_not_exists`, as the original).

use axum::Json;
use serde_json::{Value, json};

use super::super::ApiError;
use super::super::http::{Body, Member, OptBody};
use crate::api::fleets::{
    ApplyPlanRequest, ConfigurationRequest, ListProjectFleetsRequest, NameRequest, NamesRequest,
    SetDefaultGatewayRequest, SetWildcardDomainRequest, SpecRequest,
};

type ApiResult = Result<Json<Value>, ApiError>;

fn not_supported() -> ApiError {
    ApiError::client(
        "Gateways are not supported yet: this server runs jobs on its local fleet only and \
         publishes services itself, at /proxy/services/<project>/<run>/",
    )
}

fn not_found() -> ApiError {
    ApiError::not_exists("Resource not found")
}

/// `gateways/list`: no gateways.
pub(super) async fn list(
    _m: Member,
    OptBody(_req): OptBody<ListProjectFleetsRequest>,
) -> ApiResult {
    Ok(Json(json!([])))
}

/// `gateways/get`: no gateway exists.
pub(super) async fn get(_m: Member, Body(_req): Body<NameRequest>) -> ApiResult {
    Err(not_found())
}

/// `gateways/get_plan`: refused.
pub(super) async fn get_plan(_m: Member, Body(_req): Body<SpecRequest>) -> ApiResult {
    Err(not_supported())
}

/// `gateways/apply`: refused.
pub(super) async fn apply(_m: Member, Body(_req): Body<ApplyPlanRequest>) -> ApiResult {
    Err(not_supported())
}

/// `gateways/create` (the SDK's older call): refused.
pub(super) async fn create(_m: Member, Body(_req): Body<ConfigurationRequest>) -> ApiResult {
    Err(not_supported())
}

/// `gateways/delete`: the names name nothing, which the original accepts silently.
pub(super) async fn delete(_m: Member, Body(_req): Body<NamesRequest>) -> ApiResult {
    Ok(Json(Value::Null))
}

/// `gateways/set_default`: no gateway exists.
pub(super) async fn set_default(
    _m: Member,
    Body(_req): Body<SetDefaultGatewayRequest>,
) -> ApiResult {
    Err(not_found())
}

/// `gateways/set_wildcard_domain`: no gateway exists.
pub(super) async fn set_wildcard_domain(
    _m: Member,
    Body(_req): Body<SetWildcardDomainRequest>,
) -> ApiResult {
    Err(not_found())
}
