//! Persistent state through sea-orm: SQLite by default, PostgreSQL when the URL says so.
//!
//! Repositories return plain records; JSON documents (run specs, job specs) are stored as text
//! so both engines store the same thing. The server is the only writer.

pub mod entity;
pub mod migration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, Database, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use sea_orm_migration::MigratorTrait;

pub use entity::{job, member, project, run, secret, user};

/// A state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// A stored document could not be read back.
    #[error("corrupt stored document: {0}")]
    Corrupt(String),
}

/// Result of state operations.
pub type Result<T> = std::result::Result<T, StateError>;

/// A handle on the database.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    /// Bumped by every write through this handle, so readers can cache derived views.
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Db {
    /// Connects (`sqlite://path?mode=rwc` or `postgres://...`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Db> {
        let mut options = ConnectOptions::new(url.to_string());
        options.sqlx_logging(false);
        let sqlite = url.starts_with("sqlite:");
        options.max_connections(if sqlite { 4 } else { 16 });
        let conn = Database::connect(options).await?;
        if sqlite {
            use sea_orm::ConnectionTrait;
            // WAL lets readers run beside the writer; the pool's busy timeout covers writer
            // contention.
            conn.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        }
        migration::Migrator::up(&conn, None).await?;
        Ok(Db {
            conn,
            generation: std::sync::Arc::default(),
        })
    }

    /// A number that changes whenever this handle writes anything.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The underlying connection.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    // ---------------------------------------------------------------------------------------
    // users

    /// Looks a user up by token.
    pub async fn user_by_token(&self, token: &str) -> Result<Option<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::Token.eq(token))
            .one(&self.conn)
            .await?)
    }

    /// Looks a user up by name.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.conn)
            .await?)
    }

    /// Looks a user up by id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<user::Model>> {
        Ok(user::Entity::find_by_id(id.to_string())
            .one(&self.conn)
            .await?)
    }

    /// All users, oldest first.
    pub async fn users(&self) -> Result<Vec<user::Model>> {
        Ok(user::Entity::find()
            .order_by_asc(user::Column::CreatedAt)
            .all(&self.conn)
            .await?)
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        username: &str,
        token: &str,
        global_role: &str,
        email: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<user::Model> {
        self.bump();
        let model = user::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            username: Set(username.to_string()),
            token: Set(token.to_string()),
            global_role: Set(global_role.to_string()),
            email: Set(email),
            active: Set(true),
            created_at: Set(now),
        };
        Ok(model.insert(&self.conn).await?)
    }

    /// Replaces a user's token.
    pub async fn set_user_token(&self, user: &user::Model, token: &str) -> Result<user::Model> {
        self.bump();
        let mut model: user::ActiveModel = user.clone().into();
        model.token = Set(token.to_string());
        Ok(model.update(&self.conn).await?)
    }

    // ---------------------------------------------------------------------------------------
    // projects

    /// Looks a project up by name.
    pub async fn project_by_name(&self, name: &str) -> Result<Option<project::Model>> {
        Ok(project::Entity::find()
            .filter(project::Column::Name.eq(name))
            .one(&self.conn)
            .await?)
    }

    /// Looks a project up by id.
    pub async fn project_by_id(&self, id: &str) -> Result<Option<project::Model>> {
        Ok(project::Entity::find_by_id(id.to_string())
            .one(&self.conn)
            .await?)
    }

    /// All projects, oldest first.
    pub async fn projects(&self) -> Result<Vec<project::Model>> {
        Ok(project::Entity::find()
            .order_by_asc(project::Column::CreatedAt)
            .all(&self.conn)
            .await?)
    }

    /// Creates a project owned by `owner`, who becomes its admin.
    pub async fn create_project(
        &self,
        name: &str,
        owner: &user::Model,
        now: DateTime<Utc>,
    ) -> Result<project::Model> {
        self.bump();
        let model = project::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(name.to_string()),
            owner_id: Set(owner.id.clone()),
            is_public: Set(false),
            created_at: Set(now),
        };
        let project = model.insert(&self.conn).await?;
        self.set_member(&project, owner, "admin").await?;
        Ok(project)
    }

    /// The members of a project with their roles, in the order they joined.
    pub async fn members(&self, project: &project::Model) -> Result<Vec<(user::Model, String)>> {
        let rows = member::Entity::find()
            .filter(member::Column::ProjectId.eq(project.id.clone()))
            .all(&self.conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(user) = self.user_by_id(&row.user_id).await? {
                out.push((user, row.project_role));
            }
        }
        Ok(out)
    }

    /// The role of a user in a project, if a member.
    pub async fn member_role(
        &self,
        project: &project::Model,
        user: &user::Model,
    ) -> Result<Option<String>> {
        Ok(
            member::Entity::find_by_id((project.id.clone(), user.id.clone()))
                .one(&self.conn)
                .await?
                .map(|m| m.project_role),
        )
    }

    /// Adds a member or changes their role.
    pub async fn set_member(
        &self,
        project: &project::Model,
        user: &user::Model,
        role: &str,
    ) -> Result<()> {
        self.bump();
        let existing = member::Entity::find_by_id((project.id.clone(), user.id.clone()))
            .one(&self.conn)
            .await?;
        match existing {
            Some(m) => {
                let mut model: member::ActiveModel = m.into();
                model.project_role = Set(role.to_string());
                model.update(&self.conn).await?;
            }
            None => {
                member::ActiveModel {
                    project_id: Set(project.id.clone()),
                    user_id: Set(user.id.clone()),
                    project_role: Set(role.to_string()),
                }
                .insert(&self.conn)
                .await?;
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // runs and jobs

    /// Inserts a run.
    pub async fn insert_run(&self, model: run::Model) -> Result<run::Model> {
        self.bump();
        let active: run::ActiveModel = model.into();
        Ok(active.insert(&self.conn).await?)
    }

    /// Inserts a job submission.
    pub async fn insert_job(&self, model: job::Model) -> Result<job::Model> {
        self.bump();
        let active: job::ActiveModel = model.into();
        Ok(active.insert(&self.conn).await?)
    }

    /// Saves a changed run.
    pub async fn save_run(&self, model: &run::Model) -> Result<()> {
        self.bump();
        let mut active: run::ActiveModel = model.clone().into();
        for col in [
            run::Column::LastProcessedAt,
            run::Column::Status,
            run::Column::TerminationReason,
            run::Column::Deleted,
            run::Column::ServiceSpec,
        ] {
            sea_orm::ActiveModelTrait::reset(&mut active, col);
        }
        active.update(&self.conn).await?;
        Ok(())
    }

    /// Saves a changed job submission.
    pub async fn save_job(&self, model: &job::Model) -> Result<()> {
        self.bump();
        let mut active: job::ActiveModel = model.clone().into();
        for col in [
            job::Column::Status,
            job::Column::TerminationReason,
            job::Column::TerminationReasonMessage,
            job::Column::ExitStatus,
            job::Column::LastProcessedAt,
            job::Column::FinishedAt,
            job::Column::Runtime,
        ] {
            sea_orm::ActiveModelTrait::reset(&mut active, col);
        }
        active.update(&self.conn).await?;
        Ok(())
    }

    /// The newest run with this name in a project (deleted ones only when asked).
    pub async fn run_by_name(
        &self,
        project_id: &str,
        name: &str,
        include_deleted: bool,
    ) -> Result<Option<run::Model>> {
        let mut q = run::Entity::find()
            .filter(run::Column::ProjectId.eq(project_id))
            .filter(run::Column::RunName.eq(name));
        if !include_deleted {
            q = q.filter(run::Column::Deleted.eq(false));
        }
        Ok(q.order_by_desc(run::Column::SubmittedAt)
            .one(&self.conn)
            .await?)
    }

    /// A run by id.
    pub async fn run_by_id(&self, id: &str) -> Result<Option<run::Model>> {
        Ok(run::Entity::find_by_id(id.to_string())
            .one(&self.conn)
            .await?)
    }

    /// Runs of some projects, newest first.
    pub async fn runs(&self, project_ids: &[String], limit: u64) -> Result<Vec<run::Model>> {
        use sea_orm::QuerySelect;
        Ok(run::Entity::find()
            .filter(run::Column::ProjectId.is_in(project_ids.iter().cloned()))
            .order_by_desc(run::Column::SubmittedAt)
            .limit(limit)
            .all(&self.conn)
            .await?)
    }

    /// Runs that are not finished, in every project.
    pub async fn active_runs(&self) -> Result<Vec<run::Model>> {
        Ok(run::Entity::find()
            .filter(run::Column::Status.is_not_in(crate::runs::RUN_FINISHED.iter().copied()))
            .order_by_asc(run::Column::SubmittedAt)
            .all(&self.conn)
            .await?)
    }

    /// The submissions of a run's jobs, by job and submission number.
    pub async fn jobs_of_run(&self, run_id: &str) -> Result<Vec<job::Model>> {
        Ok(job::Entity::find()
            .filter(job::Column::RunId.eq(run_id))
            .order_by_asc(job::Column::ReplicaNum)
            .order_by_asc(job::Column::JobNum)
            .order_by_asc(job::Column::SubmissionNum)
            .all(&self.conn)
            .await?)
    }

    /// The submissions of several runs' jobs, ordered like [`Db::jobs_of_run`].
    pub async fn jobs_of_runs(&self, run_ids: &[String]) -> Result<Vec<job::Model>> {
        Ok(job::Entity::find()
            .filter(job::Column::RunId.is_in(run_ids.iter().cloned()))
            .order_by_asc(job::Column::RunId)
            .order_by_asc(job::Column::ReplicaNum)
            .order_by_asc(job::Column::JobNum)
            .order_by_asc(job::Column::SubmissionNum)
            .all(&self.conn)
            .await?)
    }

    /// The projects a user is a member of, with roles.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<member::Model>> {
        Ok(member::Entity::find()
            .filter(member::Column::UserId.eq(user_id))
            .all(&self.conn)
            .await?)
    }

    /// Every membership of every user, for building lookups in one query.
    pub async fn all_memberships(&self) -> Result<Vec<member::Model>> {
        Ok(member::Entity::find().all(&self.conn).await?)
    }

    /// Job submissions that hold resources (provisioning, running or terminating).
    pub async fn active_jobs(&self) -> Result<Vec<job::Model>> {
        Ok(job::Entity::find()
            .filter(job::Column::Status.is_in(["provisioning", "running", "terminating"]))
            .all(&self.conn)
            .await?)
    }

    /// A job submission by id.
    pub async fn job_by_id(&self, id: &str) -> Result<Option<job::Model>> {
        Ok(job::Entity::find_by_id(id.to_string())
            .one(&self.conn)
            .await?)
    }

    /// The secrets of a project, by name.
    pub async fn secrets(&self, project_id: &str) -> Result<Vec<secret::Model>> {
        Ok(secret::Entity::find()
            .filter(secret::Column::ProjectId.eq(project_id))
            .order_by_asc(secret::Column::Name)
            .all(&self.conn)
            .await?)
    }

    /// A secret by name.
    pub async fn secret(&self, project_id: &str, name: &str) -> Result<Option<secret::Model>> {
        Ok(secret::Entity::find()
            .filter(secret::Column::ProjectId.eq(project_id))
            .filter(secret::Column::Name.eq(name))
            .one(&self.conn)
            .await?)
    }

    /// Creates or updates a secret.
    pub async fn put_secret(
        &self,
        project_id: &str,
        name: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<secret::Model> {
        self.bump();
        match self.secret(project_id, name).await? {
            Some(existing) => {
                let mut model: secret::ActiveModel = existing.into();
                model.value = Set(value.to_string());
                Ok(model.update(&self.conn).await?)
            }
            None => Ok(secret::ActiveModel {
                id: Set(uuid::Uuid::new_v4().to_string()),
                project_id: Set(project_id.to_string()),
                name: Set(name.to_string()),
                value: Set(value.to_string()),
                created_at: Set(now),
            }
            .insert(&self.conn)
            .await?),
        }
    }

    /// Deletes a secret.
    pub async fn delete_secret(&self, project_id: &str, name: &str) -> Result<()> {
        self.bump();
        secret::Entity::delete_many()
            .filter(secret::Column::ProjectId.eq(project_id))
            .filter(secret::Column::Name.eq(name))
            .exec(&self.conn)
            .await?;
        Ok(())
    }

    /// Removes a member.
    pub async fn remove_member(&self, project: &project::Model, user: &user::Model) -> Result<()> {
        self.bump();
        member::Entity::delete_by_id((project.id.clone(), user.id.clone()))
            .exec(&self.conn)
            .await?;
        Ok(())
    }
}
