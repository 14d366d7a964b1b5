//! The HTTP layer's extractors: the authenticated user, a project member, a project manager, and
//! JSON bodies with the original's error envelopes. Handlers name what they need in their
//! signature; none parses headers or bodies itself.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::{ApiError, AppState};
use crate::auth::ProjectRole;
use crate::state::{UserRow, project};

/// The largest JSON body the API takes.
pub(crate) const MAX_JSON_BODY: usize = 8 * 1024 * 1024;

/// The user behind the request's bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Auth(pub(crate) UserRow);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Auth, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .ok_or(ApiError::NotAuthenticated)?;
        let token = crate::auth::bearer_token(header).ok_or(ApiError::NotAuthenticated)?;
        state.tokens.user(&state.db, token).await.map(Auth)
    }
}

/// A member of the project named in the path (global admins are members of every project).
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) user: UserRow,
    pub(crate) project: project::Model,
    /// The role, `None` for a global admin who is not a member.
    pub(crate) role: Option<ProjectRole>,
}

impl Member {
    /// Whether the member may manage the project (members, secrets).
    pub(crate) fn manages(&self) -> bool {
        self.user.is_admin() || self.role.is_some_and(ProjectRole::manages)
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Member, ApiError> {
        let Auth(user) = Auth::from_request_parts(parts, state).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::ProjectNotFound)?;
        let name = params.get("project").ok_or(ApiError::ProjectNotFound)?;
        let project = state
            .db
            .project_by_name(name)
            .await?
            .ok_or(ApiError::ProjectNotFound)?;
        let role = state.db.member_role(&project.id, &user.id).await?;
        if role.is_none() && !user.is_admin() {
            return Err(ApiError::denied());
        }
        Ok(Member {
            user,
            project,
            role,
        })
    }
}

/// A project admin or manager (or a global admin) of the project in the path.
#[derive(Debug, Clone)]
pub(crate) struct Manager(pub(crate) Member);

impl FromRequestParts<AppState> for Manager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Manager, ApiError> {
        let member = Member::from_request_parts(parts, state).await?;
        if !member.manages() {
            return Err(ApiError::denied());
        }
        Ok(Manager(member))
    }
}

/// A JSON body that must be present.
#[derive(Debug)]
pub(crate) struct Body<T>(pub(crate) T);

/// A JSON body whose absence (an empty body, or `null`) means the request's defaults.
#[derive(Debug)]
pub(crate) struct OptBody<T>(pub(crate) T);

async fn bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "The request body is larger than {} MiB",
                MAX_JSON_BODY / (1024 * 1024)
            ))
        } else {
            ApiError::Unprocessable(format!("cannot read the request body: {e}"))
        }
    })
}

fn invalid(e: serde_json::Error) -> ApiError {
    ApiError::Unprocessable(format!("invalid request body: {e}"))
}

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Body<T>, ApiError> {
        let bytes = bytes(req, state).await?;
        serde_json::from_slice(&bytes).map(Body).map_err(invalid)
    }
}

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<OptBody<T>, ApiError> {
        let bytes = bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptBody(T::default()));
        }
        serde_json::from_slice::<Option<T>>(&bytes)
            .map(|v| OptBody(v.unwrap_or_default()))
            .map_err(invalid)
    }
}

/// Users by token hash, so that authentication costs no query; valid while no user or
/// membership changed (the database's user generation). Keyed by the token's SHA-256, as the
/// database and the proxy's table are: the process keeps no table of usable tokens.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    inner: std::sync::RwLock<(u64, HashMap<String, UserRow>)>,
}

/// The most tokens kept; past it the cache starts over.
const MAX_CACHED_TOKENS: usize = 10_000;

impl TokenCache {
    async fn user(&self, db: &crate::state::Db, token: &str) -> Result<UserRow, ApiError> {
        let generation = db.user_generation();
        let hash = crate::state::token_hash(token);
        if let Ok(cache) = self.inner.read()
            && cache.0 == generation
            && let Some(u) = cache.1.get(&hash)
        {
            return Ok(u.clone());
        }
        match db.user_by_token_hash(&hash).await? {
            Some(u) if u.active => {
                if let Ok(mut cache) = self.inner.write() {
                    if cache.0 != generation || cache.1.len() >= MAX_CACHED_TOKENS {
                        *cache = (generation, HashMap::new());
                    }
                    cache.1.insert(hash, u.clone());
                }
                Ok(u)
            }
            _ => Err(ApiError::InvalidToken),
        }
    }
}
