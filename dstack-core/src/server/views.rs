//! What the API shows: users, projects, runs with their jobs, offers. Built from typed rows;
//! stored JSON documents (specs) are passed through without parsing.

use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::api::runs::{self as wire, InstanceOffer};
use crate::api::{self};
use crate::backends::BackendOffer;
use crate::lifecycle::{JobHistory, RetryEvent, job_status_message, run_status_message};
use crate::state::{JobRow, MemberRow, RunRow, UserRow, project};

pub(crate) fn user(u: &UserRow) -> api::User {
    api::User {
        id: u.id.clone(),
        username: u.username.clone(),
        created_at: u.created_at,
        global_role: u.global_role.as_str().into(),
        email: u.email.clone(),
        active: u.active,
        permissions: api::UserPermissions {
            can_create_projects: true,
        },
        ssh_public_key: None,
    }
}

/// A user with their token, decrypted here (the one view that shows it).
pub(crate) fn user_with_creds(
    state: &AppState,
    u: &UserRow,
) -> Result<api::UserWithCreds, ApiError> {
    Ok(api::UserWithCreds {
        user: user(u),
        creds: api::UserTokenCreds {
            token: state.db.decrypt(&u.stored_token)?,
        },
        ssh_private_key: None,
    })
}

pub(crate) async fn project(
    state: &AppState,
    p: &project::Model,
) -> Result<api::Project, ApiError> {
    let members = state.db.members(p).await?;
    let owner = match members.iter().find(|m| m.user.id == p.owner_id) {
        Some(m) => m.user.clone(),
        None => state.db.user_by_id(&p.owner_id).await?.ok_or_else(|| {
            ApiError::Internal(format!("the owner of project {} is gone", p.name))
        })?,
    };
    Ok(project_with(p, &owner, &members))
}

pub(crate) fn project_with(
    p: &project::Model,
    owner: &UserRow,
    members: &[MemberRow],
) -> api::Project {
    api::Project {
        project_id: p.id.clone(),
        project_name: p.name.clone(),
        owner: user(owner),
        created_at: p.created_at,
        backends: Vec::new(),
        members: members
            .iter()
            .map(|m| api::Member {
                user: user(&m.user),
                project_role: m.role.as_str().into(),
                permissions: api::member_permissions(m.role.as_str()),
            })
            .collect(),
        is_public: p.is_public,
        templates_repo: None,
    }
}

/// `JobProvisioningData` and `JobRuntimeData` of a started job.
fn provisioning(j: &JobRow) -> (Option<Value>, Option<Value>) {
    let Some(h) = &j.runtime.handle else {
        return (None, None);
    };
    let i = &h.instance;
    let provisioning = json!({
        "backend": i.backend,
        "base_backend": null,
        "instance_type": i.instance_type,
        "instance_id": i.instance_id,
        "hostname": i.hostname,
        "internal_ip": i.internal_ip,
        "public_ip_enabled": false,
        "instance_network": null,
        "region": i.region,
        "availability_zone": null,
        "reservation": null,
        "price": i.price,
        "username": i.username,
        "ssh_port": i.ssh_port,
        "dockerized": i.dockerized,
        "ssh_proxy": null,
        "backend_data": null,
        "gpu_driver": null,
    });
    let ports: serde_json::Map<String, Value> = h
        .ports
        .iter()
        .map(|p| (p.container_port.to_string(), json!(p.addr.port())))
        .collect();
    let runtime = json!({
        "network_mode": "host",
        "gpu": (!h.gpus.is_empty()).then_some(h.gpus.len()),
        "cpu": null,
        "memory": null,
        "ports": ports,
        "volume_names": null,
        "offer": null,
        "working_dir": null,
        "username": null,
    });
    (Some(provisioning), Some(runtime))
}

pub(crate) fn submission(j: &JobRow) -> wire::JobSubmission {
    let (provisioning, runtime) = provisioning(j);
    wire::JobSubmission {
        id: j.id.clone(),
        submission_num: j.submission_num,
        deployment_num: 0,
        submitted_at: j.submitted_at,
        last_processed_at: j.last_processed_at,
        finished_at: j.finished_at,
        inactivity_secs: None,
        status: j.status,
        status_message: job_status_message(
            j.status,
            j.termination_reason,
            j.termination_message.as_deref(),
            j.exit_status,
        ),
        termination_reason: j.termination_reason,
        termination_reason_message: j.termination_message.clone(),
        exit_status: j.exit_status,
        job_provisioning_data: provisioning,
        job_runtime_data: runtime,
        error: j
            .termination_reason
            .and_then(|r| r.to_error())
            .map(str::to_string),
        probes: Vec::new(),
        image_pull_progress: None,
    }
}

/// Stored JSON passed through without parsing (`null` if it is not JSON).
fn raw_json(text: &str) -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string(text.to_string())
        .or_else(|_| serde_json::value::RawValue::from_string("null".into()))
        .unwrap_or_default()
}

/// The retry events of a stored job spec, read without parsing the whole spec.
fn retry_events(spec: &str) -> Vec<RetryEvent> {
    #[derive(serde::Deserialize)]
    struct Retry {
        #[serde(default)]
        on_events: Vec<RetryEvent>,
    }
    #[derive(serde::Deserialize)]
    struct Spec {
        #[serde(default)]
        retry: Option<Retry>,
    }
    serde_json::from_str::<Spec>(spec)
        .ok()
        .and_then(|s| s.retry)
        .map(|r| r.on_events)
        .unwrap_or_default()
}

/// The API view of a run; `rows` are its job submissions ordered by job and submission.
pub(crate) fn run(
    r: &RunRow,
    project_name: &str,
    submissions_limit: Option<usize>,
    rows: &[JobRow],
) -> Result<wire::Run, ApiError> {
    let mut jobs: Vec<wire::Job> = Vec::new();
    let mut histories: Vec<(usize, usize)> = Vec::new();
    let mut key: Option<(i64, i64)> = None;
    for (i, j) in rows.iter().enumerate() {
        let this = (j.replica_num, j.job_num);
        if key != Some(this) {
            jobs.push(wire::Job {
                job_spec: raw_json(&j.job_spec),
                job_submissions: Vec::new(),
                job_connection_info: None,
            });
            histories.push((i, i));
            key = Some(this);
        }
        if let Some(last) = jobs.last_mut() {
            last.job_spec = raw_json(&j.job_spec);
            last.job_submissions.push(submission(j));
        }
        if let Some(h) = histories.last_mut() {
            h.1 = i;
        }
    }
    if let Some(limit) = submissions_limit {
        for job in &mut jobs {
            let n = job.job_submissions.len();
            if n > limit {
                job.job_submissions.drain(..n - limit);
            }
        }
    }
    let latest = rows.iter().max_by_key(|j| j.submitted_at).map(submission);
    let events: Vec<Vec<RetryEvent>> = histories
        .iter()
        .map(|(_, last)| retry_events(&rows[*last].job_spec))
        .collect();
    let job_histories: Vec<JobHistory<'_>> = histories
        .iter()
        .zip(&events)
        .map(|((first, last), retry_on)| JobHistory {
            latest_status: rows[*last].status,
            last_termination_reason: rows[*first..=*last]
                .iter()
                .rev()
                .find_map(|j| j.termination_reason),
            retry_on,
        })
        .collect();
    let run_spec = serde_json::value::RawValue::from_string(r.run_spec.clone())
        .map_err(|e| ApiError::Internal(format!("stored run spec of {}: {e}", r.id)))?;
    Ok(wire::Run {
        id: r.id.clone(),
        project_name: project_name.to_string(),
        user: r.user_name.clone(),
        fleet: None,
        submitted_at: r.submitted_at,
        last_processed_at: r.last_processed_at,
        status: r.status,
        status_message: run_status_message(r.status, &job_histories),
        termination_reason: r.termination_reason.map(|t| t.as_str().to_string()),
        run_spec,
        jobs,
        latest_job_submission: latest,
        cost: 0.0,
        service: r
            .service_spec
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok()),
        deployment_num: r.deployment_num,
        error: r
            .termination_reason
            .and_then(|t| t.to_error())
            .map(str::to_string),
        deleted: r.deleted,
        next_triggered_at: None,
    })
}

/// An offer as the API shows it.
pub(crate) fn offer(o: &BackendOffer) -> InstanceOffer {
    InstanceOffer {
        backend: o.backend.clone(),
        instance: o.instance.clone(),
        region: o.region.clone(),
        price: o.price,
        backend_data: serde_json::Map::new(),
        availability: if o.busy { "busy" } else { "idle" }.into(),
        availability_zones: None,
        instance_runtime: "runner".into(),
        blocks: 1,
        total_blocks: 1,
    }
}
