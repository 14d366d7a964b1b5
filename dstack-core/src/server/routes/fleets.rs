//! Fleets and instances: the backend's instances as the built-in fleet `local` of every
//! project. It cannot be deleted or re-configured, and no other fleet can be created yet: this
//! server runs jobs on its local fleet only.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Value, json};

use super::super::http::{Auth, Body, Member, OptBody};
use super::super::{ApiError, AppState};
use crate::api::fleets::{
    ApplyPlanRequest, DeleteFleetInstancesRequest, GetFleetRequest, GetInstanceHealthChecksRequest,
    GetInstanceRequest, ListFleetsRequest, ListInstancesRequest, NamesRequest, SpecRequest,
};
use crate::state::{UserRow, project};

type ApiResult = Result<Json<Value>, ApiError>;

/// The name of the built-in fleet.
pub(super) const LOCAL_FLEET: &str = "local";

/// Why fleets other than `local` cannot be created.
const LOCAL_ONLY: &str = "this server runs jobs on its local fleet only (the built-in fleet `local`, the server's own host)";

/// The projects a user sees: every project for a global admin, else the ones they are a
/// member of.
pub(super) async fn visible_projects(
    state: &AppState,
    user: &UserRow,
) -> Result<Vec<project::Model>, ApiError> {
    let projects = state.db.projects().await?;
    if user.is_admin() {
        return Ok(projects);
    }
    let member_of = state.db.memberships(&user.id).await?;
    Ok(projects
        .into_iter()
        .filter(|p| member_of.contains(&p.id))
        .collect())
}

/// When the built-in fleet and its instances were created: the server's start, at the
/// microsecond the API shows.
fn created_at(state: &AppState) -> DateTime<Utc> {
    state.started_at.trunc_subsecs(6)
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn fleet_id(project: &project::Model) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("local-fleet/{}", project.id).as_bytes(),
    )
    .to_string()
}

/// Whether any job holds the local host now.
async fn busy(state: &AppState) -> Result<bool, ApiError> {
    Ok(!state.db.started_jobs().await?.is_empty())
}

/// The instances of the built-in fleet of a project, as the API shows instances.
fn local_instances(state: &AppState, project: &project::Model, busy: bool) -> Vec<Value> {
    let created = time_text(created_at(state));
    let fleet_id = fleet_id(project);
    state
        .backend
        .instances()
        .into_iter()
        .enumerate()
        .map(|(n, i)| {
            json!({
                "id": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("local-instance/{}/{n}", project.id).as_bytes()).to_string(),
                "project_name": project.name,
                "backend": i.backend,
                "instance_type": i.instance_type,
                "name": format!("{LOCAL_FLEET}-{n}"),
                "fleet_id": fleet_id,
                "fleet_name": LOCAL_FLEET,
                "instance_num": n,
                "job_name": null,
                "hostname": i.hostname,
                "status": if busy { "busy" } else { "idle" },
                "unreachable": false,
                "health_status": "healthy",
                "termination_reason": null,
                "termination_reason_message": null,
                "created": created,
                "finished_at": null,
                "region": i.region,
                "availability_zone": null,
                "price": i.price,
                "total_blocks": 1,
                "busy_blocks": if busy { 1 } else { 0 },
                "gpu_driver": null
            })
        })
        .collect()
}

/// The built-in fleet of a project, as the API shows fleets.
fn local_fleet(state: &AppState, project: &project::Model, busy: bool) -> Value {
    let mut profile =
        serde_json::to_value(crate::config::ProfileParams::default()).unwrap_or_else(|_| json!({}));
    profile["name"] = json!("default");
    profile["default"] = json!(false);
    let instances = local_instances(state, project, busy);
    let hosts: Vec<Value> = instances.iter().map(|i| i["hostname"].clone()).collect();
    json!({
        "id": fleet_id(project),
        "name": LOCAL_FLEET,
        "project_name": project.name,
        "spec": {
            "configuration": {
                "type": "fleet", "name": LOCAL_FLEET, "placement": null, "blocks": 1, "nodes": null,
                "reservation": null, "resources": null, "backends": null, "regions": null,
                "availability_zones": null, "instance_types": null, "spot_policy": null, "retry": null,
                "max_price": null, "idle_duration": null, "tags": null, "backend_options": null,
                "ssh_config": {"user": null, "port": null, "identity_file": null, "ssh_key": null,
                               "proxy_jump": null, "hosts": hosts, "network": null},
                "env": {}
            },
            "configuration_path": null,
            "profile": profile,
            "autocreated": true
        },
        "created_at": time_text(created_at(state)),
        "status": "active",
        "status_message": null,
        "instances": instances,
    })
}

/// A page of items ordered as the original orders fleets and instances: by `(created, id)`,
/// newest first with ids ascending, or oldest first with ids descending; `prev` is where the
/// previous page ended.
fn page(
    mut items: Vec<(DateTime<Utc>, String, Value)>,
    prev: Option<(DateTime<Utc>, Option<&str>)>,
    ascending: bool,
    limit: u64,
) -> Vec<Value> {
    if let Some((at, id)) = prev {
        let at = at.trunc_subsecs(6);
        items.retain(|(t, i, _)| {
            if ascending {
                *t > at || (*t == at && id.is_some_and(|id| i.as_str() < id))
            } else {
                *t < at || (*t == at && id.is_some_and(|id| i.as_str() > id))
            }
        });
    }
    if ascending {
        items.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    } else {
        items.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    }
    items
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|(_, _, v)| v)
        .collect()
}

/// `fleets/list` of a project: its built-in fleet.
pub(super) async fn list(State(state): State<AppState>, m: Member) -> ApiResult {
    let busy = busy(&state).await?;
    Ok(Json(json!([local_fleet(&state, &m.project, busy)])))
}

/// `/api/fleets/list`: the built-in fleets of the projects the user sees.
pub(super) async fn list_all(
    State(state): State<AppState>,
    Auth(user): Auth,
    OptBody(req): OptBody<ListFleetsRequest>,
) -> ApiResult {
    if req.limit > 100 {
        return Err(ApiError::Unprocessable(
            "limit: Input should be less than or equal to 100".into(),
        ));
    }
    let busy = busy(&state).await?;
    let created = created_at(&state);
    let fleets = visible_projects(&state, &user)
        .await?
        .iter()
        .filter(|p| req.project_name.as_ref().is_none_or(|n| *n == p.name))
        .map(|p| (created, fleet_id(p), local_fleet(&state, p, busy)))
        .collect();
    let prev = req.prev_created_at.map(|t| (t, req.prev_id.as_deref()));
    Ok(Json(Value::Array(page(
        fleets,
        prev,
        req.ascending,
        req.limit,
    ))))
}

/// `fleets/get`: the built-in fleet, by name or id.
pub(super) async fn get(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<GetFleetRequest>,
) -> ApiResult {
    let found = match (&req.id, &req.name) {
        (Some(id), _) => id.eq_ignore_ascii_case(&fleet_id(&m.project)),
        (None, Some(name)) => name == LOCAL_FLEET,
        (None, None) => return Err(ApiError::client("name or id must be specified")),
    };
    if !found {
        return Err(ApiError::not_exists("Resource not found"));
    }
    let busy = busy(&state).await?;
    Ok(Json(local_fleet(&state, &m.project, busy)))
}

/// Why a fleet configuration cannot be applied here.
fn refusal(spec: &Value) -> ApiError {
    let configuration = &spec["configuration"];
    if configuration["name"].as_str() == Some(LOCAL_FLEET) {
        return ApiError::client(format!(
            "The fleet `{LOCAL_FLEET}` is built in: it is the server's own host and cannot be re-configured"
        ));
    }
    let kind = if configuration["ssh_config"].is_object() {
        "SSH fleets"
    } else {
        "Cloud fleets"
    };
    ApiError::client(format!("{kind} are not supported yet: {LOCAL_ONLY}"))
}

/// `fleets/get_plan`: refused, no fleet but `local` can exist.
pub(super) async fn get_plan(_m: Member, Body(req): Body<SpecRequest>) -> ApiResult {
    Err(refusal(&req.spec))
}

/// `fleets/apply`: refused, no fleet but `local` can exist.
pub(super) async fn apply(_m: Member, Body(req): Body<ApplyPlanRequest>) -> ApiResult {
    Err(refusal(&req.plan.spec))
}

/// `fleets/delete`: the built-in fleet cannot be deleted; other names name nothing, which
/// the original accepts silently.
pub(super) async fn delete(_m: Member, Body(req): Body<NamesRequest>) -> ApiResult {
    if req.names.iter().any(|n| n == LOCAL_FLEET) {
        return Err(ApiError::client(format!(
            "The fleet `{LOCAL_FLEET}` is built in: it is the server's own host and cannot be deleted"
        )));
    }
    Ok(Json(Value::Null))
}

/// `fleets/delete_instances`: instances of the built-in fleet cannot be deleted; other fleets
/// have none.
pub(super) async fn delete_instances(
    _m: Member,
    Body(req): Body<DeleteFleetInstancesRequest>,
) -> ApiResult {
    if req.name == LOCAL_FLEET {
        return Err(ApiError::client(format!(
            "Instances of the built-in fleet `{LOCAL_FLEET}` cannot be deleted: they are the server's own host"
        )));
    }
    Ok(Json(Value::Null))
}

/// `/api/instances/list`: the instances of the built-in fleets of the projects the user sees.
pub(super) async fn list_instances(
    State(state): State<AppState>,
    Auth(user): Auth,
    OptBody(req): OptBody<ListInstancesRequest>,
) -> ApiResult {
    let busy = busy(&state).await?;
    let created = created_at(&state);
    let mut instances = Vec::new();
    for p in visible_projects(&state, &user).await? {
        if req
            .project_names
            .as_ref()
            .is_some_and(|names| !names.contains(&p.name))
        {
            continue;
        }
        let fleet = fleet_id(&p);
        if req
            .fleet_ids
            .as_ref()
            .is_some_and(|ids| !ids.iter().any(|id| id.eq_ignore_ascii_case(&fleet)))
        {
            continue;
        }
        for i in local_instances(&state, &p, busy) {
            let id = i["id"].as_str().unwrap_or_default().to_string();
            instances.push((created, id, i));
        }
    }
    let prev = req.prev_created_at.map(|t| (t, req.prev_id.as_deref()));
    Ok(Json(Value::Array(page(
        instances,
        prev,
        req.ascending,
        req.limit,
    ))))
}

/// `instances/get`: an instance of the built-in fleet, by id.
pub(super) async fn get_instance(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<GetInstanceRequest>,
) -> ApiResult {
    let busy = busy(&state).await?;
    local_instances(&state, &m.project, busy)
        .into_iter()
        .find(|i| {
            i["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(&req.id))
        })
        .map(Json)
        .ok_or_else(|| ApiError::not_exists("Resource not found"))
}

/// `instances/get_instance_health_checks`: the local host runs no health checks (no DCGM), so
/// an instance of the built-in fleet has none.
pub(super) async fn instance_health_checks(
    State(state): State<AppState>,
    _m: Member,
    Body(req): Body<GetInstanceHealthChecksRequest>,
) -> ApiResult {
    let count = state.backend.instances().len();
    let known =
        req.fleet_name == LOCAL_FLEET && usize::try_from(req.instance_num).is_ok_and(|n| n < count);
    if !known {
        return Err(ApiError::not_exists("Resource not found"));
    }
    Ok(Json(json!({"health_checks": []})))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::page;

    #[test]
    fn pages_like_the_original() {
        let t = |s: i64| chrono::Utc.timestamp_opt(s, 0).single().expect("a time");
        let items = vec![
            (t(1), "b".to_string(), json!("1b")),
            (t(2), "a".to_string(), json!("2a")),
            (t(1), "a".to_string(), json!("1a")),
        ];
        assert_eq!(
            page(items.clone(), None, false, 10),
            vec![json!("2a"), json!("1a"), json!("1b")]
        );
        assert_eq!(
            page(items.clone(), None, true, 10),
            vec![json!("1b"), json!("1a"), json!("2a")]
        );
        assert_eq!(
            page(items.clone(), Some((t(1), Some("a"))), false, 10),
            vec![json!("1b")]
        );
        assert_eq!(
            page(items.clone(), Some((t(1), Some("b"))), true, 10),
            vec![json!("1a"), json!("2a")]
        );
        assert_eq!(
            page(items.clone(), Some((t(2), None)), false, 1),
            vec![json!("1a")]
        );
        assert!(page(items, None, false, 0).is_empty());
    }
}
