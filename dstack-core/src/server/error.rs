//! API errors and the original's error envelopes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::StateError;

/// An API request failed. Rendered with the envelopes the original's CLI understands.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer` header.
    #[error("Not authenticated")]
    NotAuthenticated,
    /// The token is unknown.
    #[error("Invalid token")]
    InvalidToken,
    /// The user may not do this.
    #[error("Access denied")]
    AccessDenied,
    /// The project in the path does not exist.
    #[error("Not found")]
    ProjectNotFound,
    /// A client error with one of the original's codes (`error`, `resource_exists`,
    /// `resource_not_exists`, ...). HTTP 400.
    #[error("{msg}")]
    Client {
        /// Message shown to the user.
        msg: String,
        /// Error code.
        code: &'static str,
    },
    /// The request body is not what the endpoint takes. HTTP 422.
    #[error("{0}")]
    Unprocessable(String),
    /// The `X-API-VERSION` header is unusable or too new.
    #[error("{msg}")]
    Version {
        /// Message.
        msg: String,
        /// `None` for an unparsable version (the original sends `null`).
        code: Option<&'static str>,
    },
    /// Something broke on our side.
    #[error(transparent)]
    State(#[from] StateError),
}

impl ApiError {
    /// A generic client error (`code: error`).
    pub fn client(msg: impl Into<String>) -> ApiError {
        ApiError::Client {
            msg: msg.into(),
            code: "error",
        }
    }

    /// A named resource does not exist (400 `resource_not_exists`).
    pub fn not_exists(msg: impl Into<String>) -> ApiError {
        ApiError::Client {
            msg: msg.into(),
            code: "resource_not_exists",
        }
    }

    /// A named resource exists already (400 `resource_exists`).
    pub fn exists(msg: impl Into<String>) -> ApiError {
        ApiError::Client {
            msg: msg.into(),
            code: "resource_exists",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::NotAuthenticated => (
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Not authenticated"}),
            ),
            ApiError::InvalidToken => (
                StatusCode::FORBIDDEN,
                json!({"detail": {"msg": "Invalid token", "code": null}}),
            ),
            ApiError::AccessDenied => (
                StatusCode::FORBIDDEN,
                json!({"detail": {"msg": "Access denied", "code": null}}),
            ),
            ApiError::ProjectNotFound => (
                StatusCode::NOT_FOUND,
                json!({"detail": {"msg": "Not found", "code": null}}),
            ),
            ApiError::Client { msg, code } => (
                StatusCode::BAD_REQUEST,
                json!({"detail": [{"msg": msg, "code": code}]}),
            ),
            ApiError::Version { msg, code } => (
                StatusCode::BAD_REQUEST,
                json!({"detail": [{"msg": msg, "code": code}]}),
            ),
            ApiError::Unprocessable(msg) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"detail": [{"type": "value_error", "loc": ["body"], "msg": msg, "input": null}]}),
            ),
            ApiError::State(e) => {
                tracing::error!(error = %e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"detail": [{"msg": "Internal server error", "code": "error"}]}),
                )
            }
        };
        (status, axum::Json(body)).into_response()
    }
}
