//! The HTTP routes, grouped by resource, and what applies to all of them: the client version
//! check, the fallback, the body limit, and a panic guard that answers 500 with the original's
//! envelope.

mod events;
mod files;
mod fleets;
mod gateways;
mod gpus;
mod logs;
mod misc;
mod projects;
mod runs;
mod secrets;
mod users;
mod volumes;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::http::MAX_JSON_BODY;
use super::{ApiError, AppState};
use crate::api::API_VERSION;

pub(super) fn router(state: AppState) -> Router {
    let project = |path: &str| format!("/api/project/{{project}}/{path}");
    let api = Router::new()
        .route("/api/server/get_info", post(users::server_info))
        .route("/api/users/get_my_user", post(users::get_my_user))
        .route("/api/users/list", post(users::list))
        .route("/api/users/get_user", post(users::get_user))
        .route("/api/users/create", post(users::create))
        .route("/api/users/update", post(users::update))
        .route("/api/users/refresh_token", post(users::refresh_token))
        .route("/api/users/delete", post(users::delete))
        .route("/api/users/refresh_ssh_key", post(users::refresh_ssh_key))
        .route("/api/users/public_keys/list", post(users::list_public_keys))
        .route("/api/users/public_keys/add", post(users::add_public_key))
        .route(
            "/api/users/public_keys/delete",
            post(users::delete_public_keys),
        )
        .route("/api/auth/list_providers", post(users::list_auth_providers))
        .route("/api/sshproxy/get_upstream", post(users::sshproxy_upstream))
        .route("/api/projects/list", post(projects::list))
        .route("/api/projects/delete", post(projects::delete))
        .route(
            "/api/projects/list_only_no_fleets",
            post(projects::list_only_no_fleets),
        )
        .route("/api/projects/{project}/update", post(projects::update))
        .route("/api/projects/create", post(projects::create))
        .route("/api/projects/{project}/get", post(projects::get))
        .route(
            "/api/projects/{project}/set_members",
            post(projects::set_members),
        )
        .route(
            "/api/projects/{project}/add_members",
            post(projects::add_members),
        )
        .route(
            "/api/projects/{project}/remove_members",
            post(projects::remove_members),
        )
        .route("/api/runs/list", post(runs::list))
        .route(&project("runs/get_plan"), post(runs::get_plan))
        .route(&project("runs/apply"), post(runs::apply))
        .route(&project("runs/get"), post(runs::get))
        .route(&project("runs/stop"), post(runs::stop))
        .route(&project("runs/delete"), post(runs::delete))
        .route(&project("logs/poll"), post(logs::poll))
        .route(&project("metrics/job/{run}"), get(logs::job_metrics))
        .route(&project("repos/init"), post(files::repos_init))
        .route("/api/fleets/list", post(fleets::list_all))
        .route(&project("fleets/list"), post(fleets::list))
        .route(&project("fleets/get"), post(fleets::get))
        .route(&project("fleets/get_plan"), post(fleets::get_plan))
        .route(&project("fleets/apply"), post(fleets::apply))
        .route(&project("fleets/delete"), post(fleets::delete))
        .route(
            &project("fleets/delete_instances"),
            post(fleets::delete_instances),
        )
        .route("/api/instances/list", post(fleets::list_instances))
        .route(&project("instances/get"), post(fleets::get_instance))
        .route(
            &project("instances/get_instance_health_checks"),
            post(fleets::instance_health_checks),
        )
        .route(&project("gateways/list"), post(gateways::list))
        .route(&project("gateways/get"), post(gateways::get))
        .route(&project("gateways/get_plan"), post(gateways::get_plan))
        .route(&project("gateways/apply"), post(gateways::apply))
        .route(&project("gateways/create"), post(gateways::create))
        .route(&project("gateways/delete"), post(gateways::delete))
        .route(
            &project("gateways/set_default"),
            post(gateways::set_default),
        )
        .route(
            &project("gateways/set_wildcard_domain"),
            post(gateways::set_wildcard_domain),
        )
        .route("/api/volumes/list", post(volumes::list_all))
        .route(&project("volumes/list"), post(volumes::list))
        .route(&project("volumes/get"), post(volumes::get))
        .route(&project("volumes/create"), post(volumes::create))
        .route(&project("volumes/delete"), post(volumes::delete))
        .route("/api/events/list", post(events::list))
        .route(&project("gpus/list"), post(gpus::list))
        .route(&project("exports/list"), post(misc::list_exports))
        .route(&project("exports/create"), post(misc::change_export))
        .route(&project("exports/update"), post(misc::change_export))
        .route(&project("exports/delete"), post(misc::delete_export))
        .route(&project("imports/list"), post(misc::list_imports))
        .route(&project("imports/delete"), post(misc::delete_import))
        .route(&project("templates/list"), post(misc::list_templates))
        .route(&project("repos/list"), post(misc::list_repos))
        .route(&project("repos/get"), post(misc::get_repo))
        .route(&project("repos/delete"), post(misc::delete_repos))
        .route("/api/backends/list_types", post(misc::list_backend_types))
        .route(&project("backends/create"), post(misc::change_backend))
        .route(&project("backends/update"), post(misc::change_backend))
        .route(&project("backends/create_yaml"), post(misc::change_backend))
        .route(&project("backends/update_yaml"), post(misc::change_backend))
        .route(&project("backends/delete"), post(misc::delete_backends))
        .route(
            &project("backends/{backend}/config_info"),
            post(misc::backend_config),
        )
        .route(
            &project("backends/{backend}/get_yaml"),
            post(misc::backend_config),
        )
        .route(&project("secrets/list"), post(secrets::list))
        .route(&project("secrets/get"), post(secrets::get))
        .route(&project("secrets/create_or_update"), post(secrets::put))
        .route(&project("secrets/delete"), post(secrets::delete))
        .route(
            "/api/files/get_archive_by_hash",
            post(files::get_archive_by_hash),
        )
        .route(
            "/api/files/upload_archive",
            post(files::upload_archive).layer(DefaultBodyLimit::disable()),
        )
        .route(
            &project("repos/upload_code"),
            post(files::upload_code).layer(DefaultBodyLimit::disable()),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(middleware::from_fn(check_client_version));
    Router::new()
        .route(
            "/healthcheck",
            get(|| async { axum::Json(json!({"status": "running"})) }),
        )
        .merge(api)
        .fallback(fallback)
        .layer(middleware::from_fn(catch_panics))
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

/// A handler that panics answers 500 with the original's envelope (the server keeps serving).
/// Handlers do not panic on input; this is the guard behind that rule.
async fn catch_panics(req: Request, next: Next) -> Response {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(_) => ApiError::Internal("a request handler panicked".into()).into_response(),
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
                if let Some(server) = server
                    && client > server
                    && (client.0 > server.0 || client.1 > server.1)
                {
                    return ApiError::Version {
                        msg: format!(
                            "The client/CLI version ({text}) is incompatible with the server version ({API_VERSION})."
                        ),
                        code: Some("error"),
                    }
                    .into_response();
                }
            }
            Ok(None) => {}
        }
    }
    next.run(req).await
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
