//! Fleets: the backend's instances as the built-in fleet `local`; gateways and volumes (none
//! exist yet).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::super::http::Member;
use super::super::{ApiError, AppState};

pub(super) async fn list(
    State(state): State<AppState>,
    m: Member,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!([local_fleet(&state, &m).await?])))
}

/// The built-in fleet of the backend's instances, as the API shows fleets.
pub(super) async fn local_fleet(state: &AppState, m: &Member) -> Result<Value, ApiError> {
    let busy = !state.db.started_jobs().await?.is_empty();
    let created = state
        .started_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut profile =
        serde_json::to_value(crate::config::ProfileParams::default()).unwrap_or_else(|_| json!({}));
    profile["name"] = json!("default");
    profile["default"] = json!(false);
    let project = &m.project;
    let fleet_id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("local-fleet/{}", project.id).as_bytes(),
    )
    .to_string();
    let instances: Vec<Value> = state
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
                "name": format!("local-{n}"),
                "fleet_id": fleet_id,
                "fleet_name": "local",
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
        .collect();
    Ok(json!({
        "id": fleet_id,
        "name": "local",
        "project_name": project.name,
        "spec": {
            "configuration": {
                "type": "fleet", "name": "local", "placement": null, "blocks": 1, "nodes": null,
                "reservation": null, "resources": null, "backends": null, "regions": null,
                "availability_zones": null, "instance_types": null, "spot_policy": null, "retry": null,
                "max_price": null, "idle_duration": null, "tags": null, "backend_options": null,
                "ssh_config": {"user": null, "port": null, "identity_file": null, "ssh_key": null, "proxy_jump": null,
                               "hosts": instances.iter().map(|i| i["hostname"].clone()).collect::<Vec<_>>(), "network": null},
                "env": {}
            },
            "configuration_path": null,
            "profile": profile,
            "autocreated": true
        },
        "created_at": created,
        "status": "active",
        "status_message": null,
        "instances": instances,
    }))
}

/// Endpoints that return an empty list: gateways and volumes (none can exist yet).
pub(super) async fn empty_list(_m: Member) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!([])))
}
