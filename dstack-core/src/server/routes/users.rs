//! Users and server info.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::super::http::{Auth, Body, OptBody};
use super::super::{ApiError, AppState, views};
use crate::api::{self, API_VERSION};
use crate::auth::GlobalRole;
use crate::state::{StateError, UserRow};

type ApiResult<T> = Result<Json<T>, ApiError>;

pub(super) async fn server_info() -> Json<api::ServerInfo> {
    Json(api::ServerInfo {
        server_version: API_VERSION.to_string(),
    })
}

pub(super) async fn get_my_user(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> ApiResult<api::UserWithCreds> {
    Ok(Json(views::user_with_creds(&state, &user)?))
}

pub(super) async fn list(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> ApiResult<Vec<api::User>> {
    let users = if user.is_admin() {
        state.db.users().await?
    } else {
        vec![user]
    };
    Ok(Json(users.iter().map(views::user).collect()))
}

async fn named(state: &AppState, caller: &UserRow, username: &str) -> Result<UserRow, ApiError> {
    if !caller.is_admin() && caller.username != username {
        return Err(ApiError::denied());
    }
    state
        .db
        .user_by_name(username)
        .await?
        .ok_or_else(|| ApiError::not_exists("User not found"))
}

#[derive(Debug, Deserialize)]
pub(super) struct UsernameRequest {
    username: String,
}

pub(super) async fn get_user(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<UsernameRequest>,
) -> ApiResult<api::UserWithCreds> {
    let user = named(&state, &caller, &req.username).await?;
    Ok(Json(views::user_with_creds(&state, &user)?))
}

fn role(value: &str) -> Result<GlobalRole, ApiError> {
    GlobalRole::parse(value).map_err(|_| ApiError::client(format!("Invalid global role: {value}")))
}

pub(super) async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<api::CreateUserRequest>,
) -> ApiResult<api::User> {
    if !caller.is_admin() {
        return Err(ApiError::denied());
    }
    let global_role = role(&req.global_role)?;
    if !crate::config::run::is_valid_resource_name(&req.username) {
        return Err(ApiError::client(
            "Username should match regex '^[a-z][a-z0-9-]{1,40}$'",
        ));
    }
    let token = uuid::Uuid::new_v4().to_string();
    let user = state
        .db
        .create_user(
            &req.username,
            &token,
            global_role,
            req.email,
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| match e {
            StateError::Conflict(_) => ApiError::exists("User already exists"),
            other => other.into(),
        })?;
    state.wake.notify_one();
    Ok(Json(views::user(&user)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<api::CreateUserRequest>,
) -> ApiResult<api::User> {
    if !caller.is_admin() {
        return Err(ApiError::denied());
    }
    let user = named(&state, &caller, &req.username).await?;
    let global_role = role(&req.global_role)?;
    if user.id == caller.id && global_role != GlobalRole::Admin {
        return Err(ApiError::client("Cannot change your own global role"));
    }
    let user = state.db.update_user(&user, global_role, req.email).await?;
    state.wake.notify_one();
    Ok(Json(views::user(&user)))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RefreshTokenRequest {
    #[serde(default)]
    username: Option<String>,
}

/// A new token for a user (themself, or anyone for an admin); the old one stops working at
/// once, in the API and the proxy.
pub(super) async fn refresh_token(
    State(state): State<AppState>,
    Auth(caller): Auth,
    OptBody(req): OptBody<RefreshTokenRequest>,
) -> ApiResult<api::UserWithCreds> {
    let username = req.username.unwrap_or_else(|| caller.username.clone());
    let user = named(&state, &caller, &username).await?;
    let user = state
        .db
        .set_user_token(&user, &uuid::Uuid::new_v4().to_string())
        .await?;
    state.wake.notify_one();
    Ok(Json(views::user_with_creds(&state, &user)?))
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteUsersRequest {
    users: Vec<String>,
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<DeleteUsersRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::denied());
    }
    let mut ids = Vec::new();
    for name in &req.users {
        if *name == caller.username {
            return Err(ApiError::client("Cannot delete yourself"));
        }
        let user = state
            .db
            .user_by_name(name)
            .await?
            .ok_or_else(|| ApiError::not_exists(format!("User {name} not found")))?;
        ids.push(user.id);
    }
    state.db.delete_users(&ids).await?;
    state.wake.notify_one();
    Ok(Json(serde_json::Value::Null))
}

const NO_SSH_KEYS: &str = "SSH keys are not supported yet: this server has no SSH access to runs (use `dstack logs` and the service proxy)";

/// `refresh_ssh_key`: no server-generated SSH keys yet.
pub(super) async fn refresh_ssh_key(_user: Auth) -> ApiResult<api::UserWithCreds> {
    Err(ApiError::client(NO_SSH_KEYS))
}

/// `public_keys/list`: none.
pub(super) async fn list_public_keys(_user: Auth) -> ApiResult<Vec<serde_json::Value>> {
    Ok(Json(Vec::new()))
}

/// `public_keys/add`: refused until runs can be reached over SSH.
pub(super) async fn add_public_key(_user: Auth) -> ApiResult<serde_json::Value> {
    Err(ApiError::client(NO_SSH_KEYS))
}

/// `public_keys/delete`: nothing to delete.
pub(super) async fn delete_public_keys(_user: Auth) -> ApiResult<serde_json::Value> {
    Ok(Json(serde_json::Value::Null))
}

/// `auth/list_providers` (no authentication): no OAuth providers, tokens only.
pub(super) async fn list_auth_providers() -> Json<Vec<serde_json::Value>> {
    Json(Vec::new())
}

/// `sshproxy/get_upstream`: there is no SSH proxy yet.
pub(super) async fn sshproxy_upstream() -> Result<Json<serde_json::Value>, ApiError> {
    Err(ApiError::client(NO_SSH_KEYS))
}
