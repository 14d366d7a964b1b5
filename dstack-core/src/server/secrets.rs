//! Project secrets (`dstack secret`), referred to as `${{ secrets.NAME }}` in `env` values.
//! Only project admins and managers (and global admins) may manage them.
//! Values are stored as given (encryption keys from `config.yml` are not supported yet).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::routes::{project_access, required_body};
use super::{ApiError, AppState};
use crate::state::{project, user};

async fn manager(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
) -> Result<(user::Model, project::Model), ApiError> {
    let (user, project) = project_access(state, headers, name).await?;
    if user.global_role != "admin"
        && !matches!(
            state.db.member_role(&project, &user).await?.as_deref(),
            Some("admin" | "manager")
        )
    {
        return Err(ApiError::AccessDenied);
    }
    Ok((user, project))
}

fn valid_name(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, serde::Deserialize)]
struct NameRequest {
    name: String,
}

#[derive(Debug, serde::Deserialize)]
struct PutRequest {
    name: String,
    value: String,
}

#[derive(Debug, serde::Deserialize)]
struct DeleteRequest {
    secrets_names: Vec<String>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (_, project) = manager(&state, &headers, &p).await?;
    let secrets = state.db.secrets(&project.id).await?;
    Ok(Json(json!(
        secrets
            .iter()
            .map(|s| json!({"id": s.id, "name": s.name, "value": null}))
            .collect::<Vec<_>>()
    )))
}

pub(super) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (_, project) = manager(&state, &headers, &p).await?;
    let req: NameRequest = required_body(&bytes)?;
    let s = state
        .db
        .secret(&project.id, &req.name)
        .await?
        .ok_or_else(|| ApiError::not_exists("Secret not found"))?;
    Ok(Json(json!({"id": s.id, "name": s.name, "value": s.value})))
}

pub(super) async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (_, project) = manager(&state, &headers, &p).await?;
    let req: PutRequest = required_body(&bytes)?;
    if !valid_name(&req.name) {
        return Err(ApiError::client(
            "Secret name should match regex '^[A-Za-z0-9-_]{1,200}$'",
        ));
    }
    let s = state
        .db
        .put_secret(&project.id, &req.name, &req.value, chrono::Utc::now())
        .await?;
    Ok(Json(json!({"id": s.id, "name": s.name, "value": s.value})))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (_, project) = manager(&state, &headers, &p).await?;
    let req: DeleteRequest = required_body(&bytes)?;
    for name in &req.secrets_names {
        if state.db.secret(&project.id, name).await?.is_none() {
            return Err(ApiError::not_exists(format!("Secret {name} not found")));
        }
    }
    for name in &req.secrets_names {
        state.db.delete_secret(&project.id, name).await?;
    }
    Ok(Json(Value::Null))
}
