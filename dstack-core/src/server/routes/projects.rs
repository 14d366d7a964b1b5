//! Projects and their members, with the original's role rules (`crate::auth`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::super::http::{Auth, Body, Member, OptBody};
use super::super::{ApiError, AppState, views};
use crate::api;
use crate::auth::{self, Caller, MembershipError, ProjectRole};
use crate::state::{StateError, UserRow};

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListProjectsRequest {
    #[serde(default)]
    include_not_joined: Option<bool>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    Auth(user): Auth,
    OptBody(req): OptBody<ListProjectsRequest>,
) -> ApiResult<Vec<api::Project>> {
    let member_of = state.db.memberships(&user.id).await?;
    let mut out = Vec::new();
    for p in state.db.projects().await? {
        let member = member_of.contains(&p.id);
        let visible =
            member || user.is_admin() || (p.is_public && req.include_not_joined.unwrap_or(true));
        if visible {
            out.push(views::project(&state, &p).await?);
        }
    }
    Ok(Json(out))
}

pub(super) async fn create(
    State(state): State<AppState>,
    Auth(user): Auth,
    Body(req): Body<api::CreateProjectRequest>,
) -> ApiResult<api::Project> {
    if !crate::config::run::is_valid_resource_name(&req.project_name) {
        return Err(ApiError::client(
            "Project name should match regex '^[a-z][a-z0-9-]{1,40}$'",
        ));
    }
    let project = state
        .db
        .create_project(&req.project_name, &user, req.is_public, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            StateError::Conflict(_) => ApiError::exists("Project already exists"),
            other => other.into(),
        })?;
    state.wake.notify_one();
    Ok(Json(views::project(&state, &project).await?))
}

pub(super) async fn get(State(state): State<AppState>, m: Member) -> ApiResult<api::Project> {
    Ok(Json(views::project(&state, &m.project).await?))
}

fn caller(m: &Member) -> Caller<'_> {
    Caller {
        username: &m.user.username,
        global: m.user.global_role,
        project: m.role,
    }
}

fn membership(e: MembershipError) -> ApiError {
    match e {
        MembershipError::Forbidden(msg) => ApiError::Forbidden(msg),
        MembershipError::Invalid(msg) => ApiError::client(msg),
    }
}

/// The users of a members request, every name resolved.
async fn resolve(
    state: &AppState,
    settings: &[(&str, ProjectRole)],
) -> Result<Vec<(UserRow, ProjectRole)>, ApiError> {
    let mut out = Vec::with_capacity(settings.len());
    for (name, role) in settings {
        let user = state
            .db
            .user_by_name(name)
            .await?
            .ok_or_else(|| ApiError::client(format!("User not found: {name}")))?;
        out.push((user, *role));
    }
    Ok(out)
}

/// The (name, role) pairs of a members request.
fn settings(members: &[api::MemberSetting]) -> Result<Vec<(&str, ProjectRole)>, ApiError> {
    members
        .iter()
        .map(|s| {
            ProjectRole::parse(&s.project_role)
                .map(|r| (s.username.as_str(), r))
                .map_err(|_| ApiError::client(format!("Invalid project role: {}", s.project_role)))
        })
        .collect()
}

async fn current_members(
    state: &AppState,
    m: &Member,
) -> Result<Vec<(UserRow, ProjectRole)>, ApiError> {
    Ok(state
        .db
        .members(&m.project)
        .await?
        .into_iter()
        .map(|c| (c.user, c.role))
        .collect())
}

fn names(list: &[(UserRow, ProjectRole)]) -> Vec<(&str, ProjectRole)> {
    list.iter()
        .map(|(u, r)| (u.username.as_str(), *r))
        .collect()
}

pub(super) async fn set_members(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<api::MembersRequest>,
) -> ApiResult<api::Project> {
    let settings = settings(&req.members)?;
    let current = current_members(&state, &m).await?;
    auth::check_set_members(caller(&m), &names(&current), &settings).map_err(membership)?;
    let new = resolve(&state, &settings).await?;
    state.db.write_members(&m.project, &new, true).await?;
    state.wake.notify_one();
    Ok(Json(views::project(&state, &m.project).await?))
}

pub(super) async fn add_members(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<api::MembersRequest>,
) -> ApiResult<api::Project> {
    let settings = settings(&req.members)?;
    auth::check_add_members(caller(&m), m.project.is_public, &settings).map_err(membership)?;
    let current = current_members(&state, &m).await?;
    auth::check_role_changes(caller(&m), &names(&current), &settings).map_err(membership)?;
    let new = resolve(&state, &settings).await?;
    state.db.write_members(&m.project, &new, false).await?;
    state.wake.notify_one();
    Ok(Json(views::project(&state, &m.project).await?))
}

pub(super) async fn remove_members(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<api::RemoveMembersRequest>,
) -> ApiResult<api::Project> {
    let current = current_members(&state, &m).await?;
    let wanted: Vec<&str> = req.usernames.iter().map(String::as_str).collect();
    for name in &wanted {
        if state.db.user_by_name(name).await?.is_none() {
            return Err(ApiError::client(format!("User not found: {name}")));
        }
    }
    auth::check_remove_members(caller(&m), &names(&current), &wanted).map_err(membership)?;
    let users: Vec<UserRow> = current
        .into_iter()
        .filter(|(u, _)| wanted.contains(&u.username.as_str()))
        .map(|(u, _)| u)
        .collect();
    state.db.remove_members(&m.project, &users).await?;
    state.wake.notify_one();
    Ok(Json(views::project(&state, &m.project).await?))
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteProjectsRequest {
    projects_names: Vec<String>,
}

/// Deletes projects: global admins any, others those they administer; never with active runs.
pub(super) async fn delete(
    State(state): State<AppState>,
    Auth(user): Auth,
    Body(req): Body<DeleteProjectsRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut projects = Vec::new();
    for name in &req.projects_names {
        let Some(p) = state.db.project_by_name(name).await? else {
            if user.is_admin() {
                return Err(ApiError::client("Failed to delete non-existent projects"));
            }
            return Err(ApiError::denied());
        };
        if !user.is_admin() {
            let role = state.db.member_role(&p.id, &user.id).await?;
            if p.owner_id != user.id && role != Some(ProjectRole::Admin) {
                return Err(ApiError::denied());
            }
        }
        projects.push(p);
    }
    for p in &projects {
        let active = state.db.active_run_names(&p.id).await?;
        if !active.is_empty() {
            let names: Vec<String> = active.iter().map(|n| format!("'{n}'")).collect();
            return Err(ApiError::client(format!(
                "Failed to delete project with active runs: [{}]",
                names.join(", ")
            )));
        }
    }
    state
        .db
        .delete_projects(&projects, chrono::Utc::now())
        .await?;
    state.wake.notify_one();
    Ok(Json(serde_json::Value::Null))
}

#[derive(Debug, Deserialize)]
pub(super) struct UpdateProjectRequest {
    #[serde(default)]
    is_public: Option<bool>,
}

/// `update`: project admins (and global admins) make a project public or private.
pub(super) async fn update(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<UpdateProjectRequest>,
) -> ApiResult<api::Project> {
    if !m.user.is_admin() && m.role != Some(ProjectRole::Admin) {
        return Err(ApiError::denied());
    }
    let project = match req.is_public {
        Some(public) => state.db.set_project_public(&m.project, public).await?,
        None => m.project.clone(),
    };
    Ok(Json(views::project(&state, &project).await?))
}

/// `list_only_no_fleets`: every project has the built-in fleet `local`.
pub(super) async fn list_only_no_fleets(_user: Auth) -> ApiResult<Vec<api::Project>> {
    Ok(Json(Vec::new()))
}
