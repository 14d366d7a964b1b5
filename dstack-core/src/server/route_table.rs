//! The proxy's route table, rebuilt from the state after writes: services with the addresses of
//! their running replicas (from the backends' job handles), and the tokens (by their SHA-256, as
//! stored: nothing is decrypted, and the table holds no usable token) with the projects they may
//! use. The proxy picks a replica from this table (`proxy::Table`).

use std::collections::{HashMap, HashSet};

use super::AppState;
use crate::config::Configuration;
use crate::lifecycle::JobStatus;
use crate::proxy::{ModelRoute, Replica, RouteTable, ServiceRoute, TokenInfo};
use crate::state::StateError;

/// Rebuilds the table and swaps it in.
pub(crate) async fn refresh(state: &AppState) {
    match build(state).await {
        Ok(table) => state.routes.replace(table),
        Err(e) => tracing::error!(error = %e, "cannot rebuild the proxy routes"),
    }
}

async fn build(state: &AppState) -> Result<RouteTable, StateError> {
    let projects = state.db.projects().await?;
    let project_name = |id: &str| projects.iter().find(|p| p.id == id).map(|p| p.name.clone());
    // One query per table, whatever the number of users and runs.
    let mut member_of: HashMap<String, HashSet<String>> = HashMap::new();
    for (project_id, user_id, _) in state.db.all_memberships().await? {
        if let Some(name) = project_name(&project_id) {
            member_of.entry(user_id).or_default().insert(name);
        }
    }
    let mut tokens = HashMap::new();
    for u in state.db.users().await? {
        if !u.active {
            continue;
        }
        tokens.insert(
            u.token_hash.clone(),
            TokenInfo {
                global_admin: u.is_admin(),
                projects: member_of.remove(&u.id).unwrap_or_default(),
            },
        );
    }
    let runs: Vec<_> = state
        .db
        .active_runs()
        .await?
        .into_iter()
        .filter(|r| r.service_spec.is_some() && !r.deleted)
        .collect();
    let run_ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let mut replicas: HashMap<String, Vec<Replica>> = HashMap::new();
    for j in state.db.jobs_of_runs(&run_ids).await? {
        if j.status != JobStatus::Running || j.job_num != 0 {
            continue;
        }
        let port = serde_json::from_str::<serde_json::Value>(&j.job_spec)
            .ok()
            .and_then(|s| s["service_port"].as_u64())
            .and_then(|p| u16::try_from(p).ok());
        let addr = port.and_then(|p| j.runtime.handle.as_ref()?.port(p));
        if let Some(addr) = addr {
            replicas.entry(j.run_id).or_default().push(Replica { addr });
        }
    }
    let mut services = Vec::new();
    for r in runs {
        let Some(project) = project_name(&r.project_id) else {
            continue;
        };
        let run_spec: serde_json::Value = serde_json::from_str(&r.run_spec).unwrap_or_default();
        let Ok(Configuration::Service(config)) =
            Configuration::from_json(&run_spec["configuration"])
        else {
            continue;
        };
        let model = config.model.as_ref().map(|m| ModelRoute {
            name: m.name().to_string(),
            prefix: match m {
                crate::config::service::ModelSpec::OpenAi { prefix, .. } => prefix.clone(),
                crate::config::service::ModelSpec::Tgi { .. } => String::new(),
            },
            created: r.submitted_at.timestamp(),
        });
        services.push(ServiceRoute {
            project,
            run: r.run_name.clone(),
            auth: config.auth,
            strip_prefix: config.strip_prefix,
            replicas: replicas.remove(&r.id).unwrap_or_default(),
            model,
        });
    }
    Ok(RouteTable { services, tokens })
}
