//! Project secrets (`dstack secret`), referred to as `${{ secrets.NAME }}` in `env` values.
//! Only project admins and managers (and global admins) may manage them.
//! Values are stored encrypted with the first key of `config.yml`'s `encryption` and decrypted
//! only here (`get`) and when a job starts.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::super::http::{Body, Manager};
use super::super::{ApiError, AppState};

fn valid_name(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct NameRequest {
    name: String,
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct PutRequest {
    name: String,
    value: String,
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct DeleteRequest {
    secrets_names: Vec<String>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    Manager(m): Manager,
) -> Result<Json<Value>, ApiError> {
    let secrets = state.db.secrets(&m.project.id).await?;
    Ok(Json(json!(
        secrets
            .iter()
            .map(|s| json!({"id": s.id, "name": s.name, "value": null}))
            .collect::<Vec<_>>()
    )))
}

pub(super) async fn get(
    State(state): State<AppState>,
    Manager(m): Manager,
    Body(req): Body<NameRequest>,
) -> Result<Json<Value>, ApiError> {
    let s = state
        .db
        .secret(&m.project.id, &req.name)
        .await?
        .ok_or_else(|| ApiError::not_exists("Secret not found"))?;
    let value = state.db.decrypt(&s.value)?;
    Ok(Json(json!({"id": s.id, "name": s.name, "value": value})))
}

pub(super) async fn put(
    State(state): State<AppState>,
    Manager(m): Manager,
    Body(req): Body<PutRequest>,
) -> Result<Json<Value>, ApiError> {
    if !valid_name(&req.name) {
        return Err(ApiError::client(
            "Secret name should match regex '^[A-Za-z0-9-_]{1,200}$'",
        ));
    }
    let s = state
        .db
        .put_secret(&m.project.id, &req.name, &req.value, chrono::Utc::now())
        .await?;
    Ok(Json(
        json!({"id": s.id, "name": s.name, "value": req.value}),
    ))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Manager(m): Manager,
    Body(req): Body<DeleteRequest>,
) -> Result<Json<Value>, ApiError> {
    for name in &req.secrets_names {
        if state.db.secret(&m.project.id, name).await?.is_none() {
            return Err(ApiError::not_exists(format!("Secret {name} not found")));
        }
    }
    state
        .db
        .delete_secrets(&m.project.id, &req.secrets_names)
        .await?;
    Ok(Json(Value::Null))
}
