//! `POST /api/events/list`: the run and job events the server records, in the original's
//! `Event` shape, filtered as the original filters them. A global admin sees every project's
//! events, other users those of the projects they are members of.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::State;

use super::super::http::{Auth, OptBody};
use super::super::{ApiError, AppState};
use crate::api::events::{Event, EventTarget, ListEventsRequest};
use crate::state::{EventsQuery, event};

/// Narrows an optional set by another (`None` is everything).
fn narrow(set: Option<HashSet<String>>, by: HashSet<String>) -> Option<HashSet<String>> {
    Some(match set {
        Some(set) => set.intersection(&by).cloned().collect(),
        None => by,
    })
}

fn ids(list: &[String]) -> HashSet<String> {
    list.iter().map(|s| s.to_ascii_lowercase()).collect()
}

/// The database query for a request, or `None` when nothing can match (a filter on targets
/// this server records no events about: projects, users, fleets, gateways, ...).
async fn query(
    state: &AppState,
    user: &crate::state::UserRow,
    req: &ListEventsRequest,
) -> Result<Option<EventsQuery>, ApiError> {
    let mut projects: Option<HashSet<String>> = None;
    if !user.is_admin() {
        projects = Some(state.db.memberships(&user.id).await?.into_iter().collect());
    }
    let mut targets: Option<HashSet<String>> = None;
    let mut types: Option<HashSet<String>> = None;
    for (_, kind, list) in req.target_filters() {
        let Some(list) = list else { continue };
        if kind != "run" && kind != "job" {
            return Ok(None);
        }
        types = narrow(types, HashSet::from([kind.to_string()]));
        targets = narrow(targets, ids(list));
    }
    if let Some(list) = &req.within_projects {
        projects = narrow(projects, ids(list));
    }
    if req.within_fleets.is_some() || req.within_gateways.is_some() {
        return Ok(None);
    }
    if let Some(runs) = &req.within_runs {
        let runs: Vec<String> = ids(runs).into_iter().collect();
        let mut within: HashSet<String> = state
            .db
            .jobs_of_runs(&runs)
            .await?
            .into_iter()
            .map(|j| j.id)
            .collect();
        within.extend(runs);
        targets = narrow(targets, within);
    }
    if let Some(list) = &req.include_target_types {
        types = narrow(types, list.iter().cloned().collect());
    }
    let actors = match &req.actors {
        None => None,
        Some(list) => {
            let wanted: HashSet<String> = list
                .iter()
                .flatten()
                .map(|s| s.to_ascii_lowercase())
                .collect();
            let names: Vec<String> = state
                .db
                .users()
                .await?
                .into_iter()
                .filter(|u| wanted.contains(&u.id.to_ascii_lowercase()))
                .map(|u| u.username)
                .collect();
            Some((names, list.iter().any(Option::is_none)))
        }
    };
    let empty = |s: &Option<HashSet<String>>| s.as_ref().is_some_and(HashSet::is_empty);
    if empty(&projects) || empty(&targets) || empty(&types) {
        return Ok(None);
    }
    let list = |s: Option<HashSet<String>>| s.map(|s| s.into_iter().collect::<Vec<_>>());
    Ok(Some(EventsQuery {
        project_ids: list(projects),
        target_ids: list(targets),
        target_types: list(types),
        actors,
        after: req
            .prev_recorded_at
            .map(|at| (at, req.prev_id.as_ref().map(|id| id.to_ascii_lowercase()))),
        limit: req.limit,
        ascending: req.ascending,
    }))
}

/// `POST /api/events/list`
pub(super) async fn list(
    State(state): State<AppState>,
    Auth(user): Auth,
    OptBody(req): OptBody<ListEventsRequest>,
) -> Result<Json<Vec<Event>>, ApiError> {
    req.validate().map_err(ApiError::Unprocessable)?;
    let Some(q) = query(&state, &user, &req).await? else {
        return Ok(Json(Vec::new()));
    };
    let rows = state.db.events(&q).await?;
    if rows.is_empty() {
        return Ok(Json(Vec::new()));
    }
    let projects: HashMap<String, String> = state
        .db
        .projects()
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let users: HashMap<String, String> = if rows.iter().any(|e| e.actor.is_some()) {
        state
            .db
            .users()
            .await?
            .into_iter()
            .map(|u| (u.username, u.id))
            .collect()
    } else {
        HashMap::new()
    };
    Ok(Json(
        rows.into_iter()
            .map(|e| view(e, &projects, &users))
            .collect(),
    ))
}

/// An event as the API shows it; `projects` maps ids to names, `users` names to ids.
fn view(
    e: event::Model,
    projects: &HashMap<String, String>,
    users: &HashMap<String, String>,
) -> Event {
    let project_name = projects.get(&e.project_id).cloned();
    let actor_id = e.actor.as_ref().and_then(|name| users.get(name).cloned());
    Event {
        is_actor_user_deleted: e.actor.as_ref().map(|_| actor_id.is_none()),
        actor_user_id: actor_id,
        actor_user: e.actor,
        id: e.id,
        message: e.message,
        recorded_at: e.recorded_at,
        targets: vec![EventTarget {
            kind: e.target_type,
            is_project_deleted: Some(project_name.is_none()),
            project_name,
            project_id: Some(e.project_id),
            id: e.target_id,
            name: e.target_name,
        }],
    }
}
