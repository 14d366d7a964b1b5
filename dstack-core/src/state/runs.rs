//! Runs and job submissions, typed.
//!
//! The API writes runs (submission, the user's stop request, deletion); the orchestrator is the
//! only writer of run statuses after submission and of job submissions. Each writes only its own
//! columns, so neither overwrites the other.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::{Db, Result, StateError, corrupt, is_unique_violation, job, run};
use crate::backends::JobHandle;
use crate::lifecycle::{
    JobStatus, JobTerminationReason, RunStatus, RunTerminationReason, StopRequest,
};

const FINISHED_RUNS: [&str; 3] = ["terminated", "failed", "done"];

/// A run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Id (UUID).
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// Who submitted it.
    pub user_name: String,
    /// Name.
    pub run_name: String,
    /// Submission time.
    pub submitted_at: DateTime<Utc>,
    /// Last change.
    pub last_processed_at: DateTime<Utc>,
    /// Status.
    pub status: RunStatus,
    /// Why it ended or is ending.
    pub termination_reason: Option<RunTerminationReason>,
    /// The run spec with the server's defaults (JSON).
    pub run_spec: String,
    /// The service endpoint (JSON), for services.
    pub service_spec: Option<String>,
    /// Deployment number.
    pub deployment_num: i64,
    /// Deleted by the user.
    pub deleted: bool,
    /// What the user asked.
    pub stop: Option<StopRequest>,
    /// Consecutive `pending` resubmissions.
    pub resubmission_attempt: u32,
}

fn stop_str(s: StopRequest) -> &'static str {
    match s {
        StopRequest::Stop => "stop",
        StopRequest::Abort => "abort",
    }
}

impl TryFrom<run::Model> for RunRow {
    type Error = StateError;
    fn try_from(m: run::Model) -> Result<RunRow> {
        Ok(RunRow {
            status: RunStatus::parse(&m.status).map_err(corrupt)?,
            termination_reason: m
                .termination_reason
                .as_deref()
                .map(RunTerminationReason::parse)
                .transpose()
                .map_err(corrupt)?,
            stop: match m.stop_request.as_deref() {
                None => None,
                Some("stop") => Some(StopRequest::Stop),
                Some("abort") => Some(StopRequest::Abort),
                Some(other) => return Err(corrupt(format!("stop request {other}"))),
            },
            resubmission_attempt: u32::try_from(m.resubmission_attempt).unwrap_or(0),
            id: m.id,
            project_id: m.project_id,
            user_name: m.user_name,
            run_name: m.run_name,
            submitted_at: m.submitted_at,
            last_processed_at: m.last_processed_at,
            run_spec: m.run_spec,
            service_spec: m.service_spec,
            deployment_num: m.deployment_num,
            deleted: m.deleted,
        })
    }
}

/// What the orchestrator keeps of a started job besides its status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobRuntime {
    /// The backend's handle, once started.
    pub handle: Option<JobHandle>,
    /// When a backend started it.
    pub started_at: Option<DateTime<Utc>>,
    /// A start was attempted and its outcome not yet saved (a crash in between is recovered
    /// through the backend's `find`).
    pub starting: bool,
    /// When stopping began.
    pub stop_requested_at: Option<DateTime<Utc>>,
    /// When SIGTERM was last sent.
    pub term_sent_at: Option<DateTime<Utc>>,
    /// SIGKILL was sent.
    pub kill_sent: bool,
}

/// A job submission.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// Id (UUID).
    pub id: String,
    /// Run id.
    pub run_id: String,
    /// Replica number.
    pub replica_num: i64,
    /// Job number within the replica.
    pub job_num: i64,
    /// Attempt number.
    pub submission_num: i64,
    /// The job spec (JSON).
    pub job_spec: String,
    /// Status.
    pub status: JobStatus,
    /// Why it ended or is ending.
    pub termination_reason: Option<JobTerminationReason>,
    /// Details.
    pub termination_message: Option<String>,
    /// Exit code.
    pub exit_status: Option<i64>,
    /// Submission time.
    pub submitted_at: DateTime<Utc>,
    /// Last change.
    pub last_processed_at: DateTime<Utc>,
    /// End time.
    pub finished_at: Option<DateTime<Utc>>,
    /// Runtime data.
    pub runtime: JobRuntime,
}

impl JobRow {
    /// A fresh submission.
    pub fn submitted(
        run_id: &str,
        replica_num: i64,
        job_num: i64,
        submission_num: i64,
        job_spec: String,
        now: DateTime<Utc>,
    ) -> JobRow {
        JobRow {
            id: uuid::Uuid::new_v4().to_string(),
            run_id: run_id.to_string(),
            replica_num,
            job_num,
            submission_num,
            job_spec,
            status: JobStatus::Submitted,
            termination_reason: None,
            termination_message: None,
            exit_status: None,
            submitted_at: now,
            last_processed_at: now,
            finished_at: None,
            runtime: JobRuntime::default(),
        }
    }

    fn into_active(self) -> job::ActiveModel {
        job::ActiveModel {
            id: Set(self.id),
            run_id: Set(self.run_id),
            replica_num: Set(self.replica_num),
            job_num: Set(self.job_num),
            submission_num: Set(self.submission_num),
            job_spec: Set(self.job_spec),
            status: Set(self.status.as_str().to_string()),
            termination_reason: Set(self.termination_reason.map(|r| r.as_str().to_string())),
            termination_reason_message: Set(self.termination_message),
            exit_status: Set(self.exit_status),
            submitted_at: Set(self.submitted_at),
            last_processed_at: Set(self.last_processed_at),
            finished_at: Set(self.finished_at),
            runtime: Set(Some(
                serde_json::to_string(&self.runtime).unwrap_or_else(|_| "{}".into()),
            )),
        }
    }
}

impl TryFrom<job::Model> for JobRow {
    type Error = StateError;
    fn try_from(m: job::Model) -> Result<JobRow> {
        Ok(JobRow {
            status: JobStatus::parse(&m.status).map_err(corrupt)?,
            termination_reason: m
                .termination_reason
                .as_deref()
                .map(JobTerminationReason::parse)
                .transpose()
                .map_err(corrupt)?,
            runtime: m
                .runtime
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default(),
            id: m.id,
            run_id: m.run_id,
            replica_num: m.replica_num,
            job_num: m.job_num,
            submission_num: m.submission_num,
            job_spec: m.job_spec,
            termination_message: m.termination_reason_message,
            exit_status: m.exit_status,
            submitted_at: m.submitted_at,
            last_processed_at: m.last_processed_at,
            finished_at: m.finished_at,
        })
    }
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunsQuery {
    /// Only these projects.
    pub project_ids: Vec<String>,
    /// Only unfinished, undeleted runs.
    pub only_active: bool,
    /// At most this many.
    pub limit: u64,
    /// Oldest first instead of newest first.
    pub ascending: bool,
    /// Only runs submitted before (or, ascending, after) this one: `(submitted_at, id)`.
    pub after: Option<(DateTime<Utc>, String)>,
}

fn runs(models: Vec<run::Model>) -> Result<Vec<RunRow>> {
    models.into_iter().map(RunRow::try_from).collect()
}

fn jobs(models: Vec<job::Model>) -> Result<Vec<JobRow>> {
    models.into_iter().map(JobRow::try_from).collect()
}

impl Db {
    /// Submits a run with its first jobs in one transaction, marking the finished run it
    /// replaces (same name) deleted. [`StateError::Conflict`] when an active run has the name.
    pub async fn submit_run(
        &self,
        r: RunRow,
        first_jobs: Vec<JobRow>,
        replaces: Option<&str>,
    ) -> Result<()> {
        let txn = self.conn.begin().await?;
        if let Some(old) = replaces {
            run::Entity::update_many()
                .col_expr(run::Column::Deleted, Expr::value(true))
                .filter(run::Column::Id.eq(old))
                .exec(&txn)
                .await?;
        }
        let name = r.run_name.clone();
        let model = run::ActiveModel {
            id: Set(r.id),
            project_id: Set(r.project_id),
            user_name: Set(r.user_name),
            run_name: Set(r.run_name.clone()),
            submitted_at: Set(r.submitted_at),
            last_processed_at: Set(r.last_processed_at),
            status: Set(r.status.as_str().to_string()),
            termination_reason: Set(r.termination_reason.map(|t| t.as_str().to_string())),
            run_spec: Set(r.run_spec),
            service_spec: Set(r.service_spec),
            deployment_num: Set(r.deployment_num),
            deleted: Set(false),
            active_name: Set(Some(r.run_name)),
            stop_request: Set(None),
            resubmission_attempt: Set(0),
        };
        model.insert(&txn).await.map_err(|e| {
            if is_unique_violation(&e) {
                StateError::Conflict(format!("active run {name}"))
            } else {
                e.into()
            }
        })?;
        if !first_jobs.is_empty() {
            job::Entity::insert_many(first_jobs.into_iter().map(JobRow::into_active))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        self.written();
        Ok(())
    }

    /// Records the user's stop request on an unfinished run (an abort overrides a stop).
    /// Returns whether the run was unfinished.
    pub async fn request_stop(&self, run_id: &str, stop: StopRequest) -> Result<bool> {
        let mut q = run::Entity::update_many()
            .col_expr(run::Column::StopRequest, Expr::value(stop_str(stop)))
            .filter(run::Column::Id.eq(run_id))
            .filter(run::Column::Status.is_not_in(FINISHED_RUNS));
        if stop == StopRequest::Stop {
            q = q.filter(
                Condition::any()
                    .add(run::Column::StopRequest.is_null())
                    .add(run::Column::StopRequest.ne("abort")),
            );
        }
        let done = q.exec(&self.conn).await?;
        self.written();
        Ok(done.rows_affected > 0)
    }

    /// Marks finished runs deleted.
    pub async fn delete_runs(&self, ids: &[String]) -> Result<()> {
        run::Entity::update_many()
            .col_expr(run::Column::Deleted, Expr::value(true))
            .filter(run::Column::Id.is_in(ids.iter().cloned()))
            .filter(run::Column::Status.is_in(FINISHED_RUNS))
            .exec(&self.conn)
            .await?;
        self.written();
        Ok(())
    }

    /// Stores what one orchestrator pass decided for a run, in one transaction: the run's new
    /// status (a finished run frees its name), changed and new job submissions.
    pub async fn save_pass(
        &self,
        r: &RunRow,
        run_changed: bool,
        changed: Vec<JobRow>,
        new: Vec<JobRow>,
    ) -> Result<()> {
        if !run_changed && changed.is_empty() && new.is_empty() {
            return Ok(());
        }
        let txn = self.conn.begin().await?;
        if run_changed {
            let mut q = run::Entity::update_many()
                .col_expr(run::Column::Status, Expr::value(r.status.as_str()))
                .col_expr(
                    run::Column::TerminationReason,
                    Expr::value(r.termination_reason.map(|t| t.as_str())),
                )
                .col_expr(
                    run::Column::LastProcessedAt,
                    Expr::value(r.last_processed_at),
                )
                .col_expr(
                    run::Column::ResubmissionAttempt,
                    Expr::value(i64::from(r.resubmission_attempt)),
                );
            if r.status.is_finished() {
                q = q.col_expr(run::Column::ActiveName, Expr::value(Option::<String>::None));
            }
            q.filter(run::Column::Id.eq(r.id.as_str()))
                .exec(&txn)
                .await?;
        }
        for j in changed {
            j.into_active().update(&txn).await?;
        }
        if !new.is_empty() {
            job::Entity::insert_many(new.into_iter().map(JobRow::into_active))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        self.written();
        Ok(())
    }

    /// Saves one job submission (the orchestrator only).
    pub async fn save_job(&self, j: &JobRow) -> Result<()> {
        j.clone().into_active().update(&self.conn).await?;
        self.written();
        Ok(())
    }

    /// The newest undeleted run with this name in a project.
    pub async fn run_by_name(&self, project_id: &str, name: &str) -> Result<Option<RunRow>> {
        run::Entity::find()
            .filter(run::Column::ProjectId.eq(project_id))
            .filter(run::Column::RunName.eq(name))
            .filter(run::Column::Deleted.eq(false))
            .order_by_desc(run::Column::SubmittedAt)
            .one(&self.conn)
            .await?
            .map(RunRow::try_from)
            .transpose()
    }

    /// A run by id.
    pub async fn run_by_id(&self, id: &str) -> Result<Option<RunRow>> {
        run::Entity::find_by_id(id.to_string())
            .one(&self.conn)
            .await?
            .map(RunRow::try_from)
            .transpose()
    }

    /// A page of runs of some projects.
    pub async fn runs(&self, q: &RunsQuery) -> Result<Vec<RunRow>> {
        let mut find =
            run::Entity::find().filter(run::Column::ProjectId.is_in(q.project_ids.iter().cloned()));
        if q.only_active {
            find = find
                .filter(run::Column::Status.is_not_in(FINISHED_RUNS))
                .filter(run::Column::Deleted.eq(false));
        }
        if let Some((at, id)) = &q.after {
            let (time, tie) = if q.ascending {
                (
                    run::Column::SubmittedAt.gt(*at),
                    Condition::all()
                        .add(run::Column::SubmittedAt.eq(*at))
                        .add(run::Column::Id.gt(id.as_str())),
                )
            } else {
                (
                    run::Column::SubmittedAt.lt(*at),
                    Condition::all()
                        .add(run::Column::SubmittedAt.eq(*at))
                        .add(run::Column::Id.lt(id.as_str())),
                )
            };
            find = find.filter(Condition::any().add(time).add(tie));
        }
        let find = if q.ascending {
            find.order_by_asc(run::Column::SubmittedAt)
                .order_by_asc(run::Column::Id)
        } else {
            find.order_by_desc(run::Column::SubmittedAt)
                .order_by_desc(run::Column::Id)
        };
        runs(find.limit(q.limit).all(&self.conn).await?)
    }

    /// Runs that are not finished, in every project.
    pub async fn active_runs(&self) -> Result<Vec<RunRow>> {
        runs(
            run::Entity::find()
                .filter(run::Column::Status.is_not_in(FINISHED_RUNS))
                .order_by_asc(run::Column::SubmittedAt)
                .all(&self.conn)
                .await?,
        )
    }

    /// The submissions of some runs' jobs, by run, job and submission number.
    pub async fn jobs_of_runs(&self, run_ids: &[String]) -> Result<Vec<JobRow>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        jobs(
            job::Entity::find()
                .filter(job::Column::RunId.is_in(run_ids.iter().cloned()))
                .order_by_asc(job::Column::RunId)
                .order_by_asc(job::Column::ReplicaNum)
                .order_by_asc(job::Column::JobNum)
                .order_by_asc(job::Column::SubmissionNum)
                .all(&self.conn)
                .await?,
        )
    }

    /// The submissions of a run's jobs, by job and submission number.
    pub async fn jobs_of_run(&self, run_id: &str) -> Result<Vec<JobRow>> {
        self.jobs_of_runs(&[run_id.to_string()]).await
    }

    /// Job submissions that hold something on a backend.
    pub async fn started_jobs(&self) -> Result<Vec<JobRow>> {
        jobs(
            job::Entity::find()
                .filter(job::Column::Status.is_in([
                    "provisioning",
                    "pulling",
                    "running",
                    "terminating",
                ]))
                .all(&self.conn)
                .await?,
        )
    }

    /// A job submission by id.
    pub async fn job_by_id(&self, id: &str) -> Result<Option<JobRow>> {
        job::Entity::find_by_id(id.to_string())
            .one(&self.conn)
            .await?
            .map(JobRow::try_from)
            .transpose()
    }
}
