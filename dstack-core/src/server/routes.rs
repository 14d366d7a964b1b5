//! The HTTP routes: authentication, the version check, users, projects and server info.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{ApiError, AppState};
use crate::api::{self, API_VERSION};
use crate::state::{project, user};

type ApiResult<T> = Result<axum::Json<T>, ApiError>;

pub(super) fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/server/get_info", post(server_info))
        .route("/api/users/get_my_user", post(get_my_user))
        .route("/api/users/list", post(list_users))
        .route("/api/users/get_user", post(get_user))
        .route("/api/users/create", post(create_user))
        .route("/api/projects/list", post(list_projects))
        .route("/api/projects/create", post(create_project))
        .route("/api/projects/{project}/get", post(get_project))
        .route("/api/projects/{project}/set_members", post(set_members))
        .route("/api/projects/{project}/add_members", post(add_members))
        .route(
            "/api/projects/{project}/remove_members",
            post(remove_members),
        )
        .route("/api/runs/list", post(super::runs::list_runs))
        .route(
            "/api/project/{project}/runs/get_plan",
            post(super::runs::get_plan),
        )
        .route(
            "/api/project/{project}/runs/apply",
            post(super::runs::apply),
        )
        .route(
            "/api/project/{project}/runs/get",
            post(super::runs::get_run),
        )
        .route(
            "/api/project/{project}/runs/stop",
            post(super::runs::stop_runs),
        )
        .route(
            "/api/project/{project}/runs/delete",
            post(super::runs::delete_runs),
        )
        .route(
            "/api/project/{project}/logs/poll",
            post(super::runs::poll_logs),
        )
        .route(
            "/api/project/{project}/metrics/job/{run}",
            get(super::runs::job_metrics),
        )
        .route(
            "/api/project/{project}/repos/init",
            post(super::runs::repos_init),
        )
        .route(
            "/api/project/{project}/fleets/list",
            post(super::runs::list_fleets),
        )
        .route(
            "/api/project/{project}/gateways/list",
            post(super::runs::empty_list),
        )
        .route(
            "/api/project/{project}/volumes/list",
            post(super::runs::empty_list),
        )
        .route(
            "/api/files/upload_archive",
            post(super::files::upload_archive).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/api/files/get_archive_by_hash",
            post(super::files::get_archive_by_hash),
        )
        .route(
            "/api/project/{project}/secrets/list",
            post(super::secrets::list),
        )
        .route(
            "/api/project/{project}/secrets/get",
            post(super::secrets::get),
        )
        .route(
            "/api/project/{project}/secrets/create_or_update",
            post(super::secrets::put),
        )
        .route(
            "/api/project/{project}/secrets/delete",
            post(super::secrets::delete),
        )
        .route(
            "/api/project/{project}/repos/upload_code",
            post(super::files::upload_code).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .layer(middleware::from_fn(check_client_version));
    Router::new()
        .route(
            "/healthcheck",
            get(|| async { axum::Json(json!({"status": "running"})) }),
        )
        .merge(api)
        .fallback(fallback)
        .with_state(state)
}

async fn fallback(method: Method) -> Response {
    if method == Method::POST {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            axum::Json(json!({"detail": "Method Not Allowed"})),
        )
            .into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"detail": "Not Found"})),
        )
            .into_response()
    }
}

/// `major.minor.patch` of a client version; `None` means "do not check".
fn parse_version(v: &str) -> Result<Option<(u64, u64, u64)>, ()> {
    let v = v.trim();
    if v.is_empty() || v == "latest" {
        return Ok(None);
    }
    let core = v
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or("");
    let core = core.trim_end_matches('.');
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(());
    }
    let nums: Vec<u64> = parts
        .iter()
        .map(|p| p.parse().map_err(|_| ()))
        .collect::<Result<_, _>>()?;
    let rest = &v[core.len()..];
    let suffix_ok = rest.is_empty()
        || ["dev", "a", "b", "rc", ".dev", ".post", "post"]
            .iter()
            .any(|s| {
                rest.strip_prefix(s)
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            });
    if !suffix_ok {
        return Err(());
    }
    let version = (
        nums[0],
        *nums.get(1).unwrap_or(&0),
        *nums.get(2).unwrap_or(&0),
    );
    Ok((version != (0, 0, 0)).then_some(version))
}

/// The original's only compatibility rule: a client newer in major or minor is refused.
async fn check_client_version(req: Request, next: Next) -> Response {
    if let Some(header) = req.headers().get("x-api-version") {
        let text = header.to_str().unwrap_or("");
        let server = parse_version(API_VERSION).ok().flatten();
        match parse_version(text) {
            Err(()) => {
                return ApiError::Version {
                    msg: format!("Invalid version: {text}"),
                    code: None,
                }
                .into_response();
            }
            Ok(Some(client)) => {
                if let Some(server) = server {
                    if client > server && (client.0 > server.0 || client.1 > server.1) {
                        return ApiError::Version {
                            msg: format!(
                                "The client/CLI version ({text}) is incompatible with the server version ({API_VERSION})."
                            ),
                            code: Some("error"),
                        }
                        .into_response();
                    }
                }
            }
            Ok(None) => {}
        }
    }
    next.run(req).await
}

/// Parses a JSON body; an empty body means the request's defaults.
pub(super) fn body<T: DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice::<Option<T>>(bytes)
        .map(Option::unwrap_or_default)
        .map_err(|e| ApiError::Unprocessable(format!("invalid request body: {e}")))
}

/// Parses a JSON body that must be present.
pub(super) fn required_body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Unprocessable(format!("invalid request body: {e}")))
}

/// The user behind the request's bearer token.
pub(super) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<user::Model, ApiError> {
    let header = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .ok_or(ApiError::NotAuthenticated)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(ApiError::NotAuthenticated)?
        .trim();
    if let Some(u) = state
        .tokens
        .read()
        .ok()
        .and_then(|cache| cache.get(token).cloned())
    {
        return Ok(u);
    }
    match state.db.user_by_token(token).await? {
        Some(u) if u.active => {
            if let Ok(mut cache) = state.tokens.write() {
                cache.insert(token.to_string(), u.clone());
            }
            Ok(u)
        }
        _ => Err(ApiError::InvalidToken),
    }
}

fn is_admin(user: &user::Model) -> bool {
    user.global_role == "admin"
}

/// The project in the path, if the user may see it (global admins see all projects).
pub(super) async fn project_access(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
) -> Result<(user::Model, project::Model), ApiError> {
    let user = authenticate(state, headers).await?;
    let project = state
        .db
        .project_by_name(name)
        .await?
        .ok_or(ApiError::ProjectNotFound)?;
    if !is_admin(&user) && state.db.member_role(&project, &user).await?.is_none() {
        return Err(ApiError::AccessDenied);
    }
    Ok((user, project))
}

fn user_dto(u: &user::Model) -> api::User {
    api::User {
        id: u.id.clone(),
        username: u.username.clone(),
        created_at: u.created_at,
        global_role: u.global_role.clone(),
        email: u.email.clone(),
        active: u.active,
        permissions: api::UserPermissions {
            can_create_projects: true,
        },
        ssh_public_key: None,
    }
}

fn user_with_creds(u: &user::Model) -> api::UserWithCreds {
    api::UserWithCreds {
        user: user_dto(u),
        creds: api::UserTokenCreds {
            token: u.token.clone(),
        },
        ssh_private_key: None,
    }
}

async fn project_dto(state: &AppState, p: &project::Model) -> Result<api::Project, ApiError> {
    let owner = state.db.user_by_id(&p.owner_id).await?;
    let members = state
        .db
        .members(p)
        .await?
        .into_iter()
        .map(|(u, role)| api::Member {
            user: user_dto(&u),
            permissions: api::member_permissions(&role),
            project_role: role,
        })
        .collect();
    let owner = owner.ok_or_else(|| ApiError::client("the project's owner no longer exists"))?;
    Ok(api::Project {
        project_id: p.id.clone(),
        project_name: p.name.clone(),
        owner: user_dto(&owner),
        created_at: p.created_at,
        backends: Vec::new(),
        members,
        is_public: p.is_public,
        templates_repo: None,
    })
}

async fn server_info() -> axum::Json<api::ServerInfo> {
    axum::Json(api::ServerInfo {
        server_version: API_VERSION.to_string(),
    })
}

async fn get_my_user(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<api::UserWithCreds> {
    let user = authenticate(&state, &headers).await?;
    Ok(axum::Json(user_with_creds(&user)))
}

async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Vec<api::User>> {
    let user = authenticate(&state, &headers).await?;
    let users = if is_admin(&user) {
        state.db.users().await?
    } else {
        vec![user]
    };
    Ok(axum::Json(users.iter().map(user_dto).collect()))
}

async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<api::UserWithCreds> {
    let caller = authenticate(&state, &headers).await?;
    let req: api::GetUserRequest = required_body(&bytes)?;
    if !is_admin(&caller) && caller.username != req.username {
        return Err(ApiError::AccessDenied);
    }
    let user = state
        .db
        .user_by_name(&req.username)
        .await?
        .ok_or_else(|| ApiError::not_exists("User not found"))?;
    Ok(axum::Json(user_with_creds(&user)))
}

async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<api::User> {
    let caller = authenticate(&state, &headers).await?;
    if !is_admin(&caller) {
        return Err(ApiError::AccessDenied);
    }
    let req: api::CreateUserRequest = required_body(&bytes)?;
    if !matches!(req.global_role.as_str(), "admin" | "user") {
        return Err(ApiError::client(format!(
            "Invalid global role: {}",
            req.global_role
        )));
    }
    if !crate::config::run::is_valid_resource_name(&req.username) && req.username != "admin" {
        return Err(ApiError::client(
            "Username should match regex '^[a-z][a-z0-9-]{1,40}$'",
        ));
    }
    if state.db.user_by_name(&req.username).await?.is_some() {
        return Err(ApiError::exists("User already exists"));
    }
    let token = uuid::Uuid::new_v4().to_string();
    if let Ok(mut cache) = state.tokens.write() {
        cache.clear();
    }
    let user = state
        .db
        .create_user(
            &req.username,
            &token,
            &req.global_role,
            req.email,
            chrono::Utc::now(),
        )
        .await?;
    Ok(axum::Json(user_dto(&user)))
}

#[derive(Debug, Default, serde::Deserialize)]
struct ListProjectsRequest {
    #[serde(default)]
    include_not_joined: Option<bool>,
}

async fn list_projects(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Vec<api::Project>> {
    let user = authenticate(&state, &headers).await?;
    let req: ListProjectsRequest = body(&bytes)?;
    let mut out = Vec::new();
    for p in state.db.projects().await? {
        let member = state.db.member_role(&p, &user).await?.is_some();
        let visible =
            member || is_admin(&user) || (p.is_public && req.include_not_joined.unwrap_or(true));
        if visible {
            out.push(project_dto(&state, &p).await?);
        }
    }
    Ok(axum::Json(out))
}

async fn create_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<api::Project> {
    let user = authenticate(&state, &headers).await?;
    let req: api::CreateProjectRequest = required_body(&bytes)?;
    if !crate::config::run::is_valid_resource_name(&req.project_name) {
        return Err(ApiError::client(
            "Project name should match regex '^[a-z][a-z0-9-]{1,40}$'",
        ));
    }
    if state.db.project_by_name(&req.project_name).await?.is_some() {
        return Err(ApiError::exists("Project already exists"));
    }
    let project = state
        .db
        .create_project(&req.project_name, &user, chrono::Utc::now())
        .await?;
    Ok(axum::Json(project_dto(&state, &project).await?))
}

async fn get_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<api::Project> {
    let (_, project) = project_access(&state, &headers, &name).await?;
    Ok(axum::Json(project_dto(&state, &project).await?))
}

/// Only global admins and project admins/managers may change membership.
async fn require_manager(
    state: &AppState,
    user: &user::Model,
    project: &project::Model,
) -> Result<(), ApiError> {
    if is_admin(user) {
        return Ok(());
    }
    match state.db.member_role(project, user).await?.as_deref() {
        Some("admin" | "manager") => Ok(()),
        _ => Err(ApiError::AccessDenied),
    }
}

async fn apply_members(
    state: &AppState,
    project: &project::Model,
    members: &[api::MemberSetting],
) -> Result<(), ApiError> {
    for m in members {
        if !matches!(m.project_role.as_str(), "admin" | "manager" | "user") {
            return Err(ApiError::client(format!(
                "Invalid project role: {}",
                m.project_role
            )));
        }
        let user = state
            .db
            .user_by_name(&m.username)
            .await?
            .ok_or_else(|| ApiError::not_exists(format!("User {} not found", m.username)))?;
        state.db.set_member(project, &user, &m.project_role).await?;
    }
    Ok(())
}

async fn set_members(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<api::Project> {
    let (user, project) = project_access(&state, &headers, &name).await?;
    require_manager(&state, &user, &project).await?;
    let req: api::MembersRequest = required_body(&bytes)?;
    for (existing, _) in state.db.members(&project).await? {
        if !req.members.iter().any(|m| m.username == existing.username) {
            state.db.remove_member(&project, &existing).await?;
        }
    }
    apply_members(&state, &project, &req.members).await?;
    Ok(axum::Json(project_dto(&state, &project).await?))
}

async fn add_members(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<api::Project> {
    let (user, project) = project_access(&state, &headers, &name).await?;
    require_manager(&state, &user, &project).await?;
    let req: api::MembersRequest = required_body(&bytes)?;
    apply_members(&state, &project, &req.members).await?;
    Ok(axum::Json(project_dto(&state, &project).await?))
}

async fn remove_members(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<api::Project> {
    let (user, project) = project_access(&state, &headers, &name).await?;
    require_manager(&state, &user, &project).await?;
    let req: api::RemoveMembersRequest = required_body(&bytes)?;
    for username in &req.usernames {
        if let Some(u) = state.db.user_by_name(username).await? {
            state.db.remove_member(&project, &u).await?;
        }
    }
    Ok(axum::Json(project_dto(&state, &project).await?))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions() {
        assert_eq!(parse_version("0.22.5"), Ok(Some((0, 22, 5))));
        assert_eq!(parse_version("latest"), Ok(None));
        assert_eq!(parse_version("0.0.0"), Ok(None));
        assert_eq!(parse_version("0.0.0.dev1"), Ok(None));
        assert_eq!(parse_version("0.23.0rc1"), Ok(Some((0, 23, 0))));
        assert!(parse_version("garbage!").is_err());
    }
}
