//! API errors and the original's error envelopes. Every error a handler returns becomes a
//! response here, in one place; internal faults are logged here and answer 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::{ACCESS_DENIED, forbidden_body};
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
    /// The user may not do this (403), with the reason.
    #[error("{0}")]
    Forbidden(String),
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
    /// The request body is larger than the endpoint accepts. HTTP 413.
    #[error("{0}")]
    TooLarge(String),
    /// The `X-API-VERSION` header is unusable or too new.
    #[error("{msg}")]
    Version {
        /// Message.
        msg: String,
        /// `None` for an unparsable version (the original sends `null`).
        code: Option<&'static str>,
    },
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Something else broke on our side.
    #[error("{0}")]
    Internal(String),
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

    /// Access denied, without details.
    pub fn denied() -> ApiError {
        ApiError::Forbidden(ACCESS_DENIED.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::NotAuthenticated => (
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Not authenticated"}),
            ),
            ApiError::InvalidToken => (StatusCode::FORBIDDEN, forbidden_body("Invalid token")),
            ApiError::Forbidden(msg) => (StatusCode::FORBIDDEN, forbidden_body(msg)),
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
            ApiError::TooLarge(msg) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"detail": [{"msg": msg, "code": "error"}]}),
            ),
            ApiError::State(e) => internal(e),
            ApiError::Internal(e) => internal(e),
        };
        (status, axum::Json(body)).into_response()
    }
}

fn internal(e: &dyn std::fmt::Display) -> (StatusCode, serde_json::Value) {
    tracing::error!(error = %e, "request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"detail": [{"msg": "Internal server error", "code": "error"}]}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_body(e: ApiError) -> (u16, serde_json::Value) {
        let response = e.into_response();
        let status = response.status().as_u16();
        let body = futures_util::FutureExt::now_or_never(axum::body::to_bytes(
            response.into_body(),
            1 << 20,
        ))
        .and_then(Result::ok)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
        (status, body)
    }

    #[test]
    fn internal_faults_are_500_with_the_envelope_never_400() {
        for e in [
            ApiError::Internal("boom".into()),
            ApiError::State(StateError::Corrupt("bad row".into())),
        ] {
            let (status, body) = status_and_body(e);
            assert_eq!(status, 500);
            assert_eq!(
                body,
                json!({"detail": [{"msg": "Internal server error", "code": "error"}]}),
                "no internals leak"
            );
        }
    }

    #[test]
    fn client_errors_keep_the_original_shapes() {
        assert_eq!(
            status_and_body(ApiError::not_exists("Run not found")),
            (
                400,
                json!({"detail": [{"msg": "Run not found", "code": "resource_not_exists"}]})
            )
        );
        assert_eq!(
            status_and_body(ApiError::denied()),
            (
                403,
                json!({"detail": {"msg": "Access denied", "code": null}})
            )
        );
        assert_eq!(status_and_body(ApiError::TooLarge("big".into())).0, 413);
        assert_eq!(status_and_body(ApiError::Unprocessable("x".into())).0, 422);
    }
}
