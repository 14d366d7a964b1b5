//! Table definitions (sea-orm entities). Mirror the migrations in [`super::migration`].
#![allow(missing_docs)]

/// `users`
pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub username: String,
        /// The token as stored: `enc:<key type>:<key name>:<data>` (see `state::crypto`).
        pub token: String,
        /// The token's hex SHA-256, unique: requests are authenticated by it.
        pub token_hash: String,
        pub global_role: String,
        pub email: Option<String>,
        pub active: bool,
        pub created_at: ChronoDateTimeUtc,
        pub deleted: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `projects`
pub mod project {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "projects")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub owner_id: String,
        pub is_public: bool,
        pub created_at: ChronoDateTimeUtc,
        pub deleted: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `members`: who belongs to which project, with which role.
pub mod member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub project_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub project_role: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `runs`
pub mod run {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub project_id: String,
        pub user_name: String,
        pub run_name: String,
        pub submitted_at: ChronoDateTimeUtc,
        pub last_processed_at: ChronoDateTimeUtc,
        pub status: String,
        pub termination_reason: Option<String>,
        #[sea_orm(column_type = "Text")]
        pub run_spec: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub service_spec: Option<String>,
        pub deployment_num: i64,
        pub deleted: bool,
        /// The run's name while it is active; unique per project (one active run per name).
        pub active_name: Option<String>,
        /// `stop` or `abort`, once the user asked.
        pub stop_request: Option<String>,
        pub resubmission_attempt: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `jobs`: one row per job submission.
pub mod job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub run_id: String,
        pub replica_num: i64,
        pub job_num: i64,
        pub submission_num: i64,
        #[sea_orm(column_type = "Text")]
        pub job_spec: String,
        pub status: String,
        pub termination_reason: Option<String>,
        pub termination_reason_message: Option<String>,
        pub exit_status: Option<i64>,
        pub submitted_at: ChronoDateTimeUtc,
        pub last_processed_at: ChronoDateTimeUtc,
        pub finished_at: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text", nullable)]
        pub runtime: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// A fresh submission of one job of a run, waiting for the scheduler.
        pub fn submitted(
            run_id: String,
            replica_num: i64,
            job_num: i64,
            submission_num: i64,
            job_spec: String,
            now: ChronoDateTimeUtc,
        ) -> Self {
            Self {
                id: uuid::Uuid::new_v4().to_string(),
                run_id,
                replica_num,
                job_num,
                submission_num,
                job_spec,
                status: "submitted".into(),
                termination_reason: None,
                termination_reason_message: None,
                exit_status: None,
                submitted_at: now,
                last_processed_at: now,
                finished_at: None,
                runtime: None,
            }
        }
    }
}

/// `secrets`: values `${{ secrets.NAME }}` refers to.
pub mod secret {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub project_id: String,
        pub name: String,
        /// The value as stored: `enc:<key type>:<key name>:<data>` (see `state::crypto`).
        #[sea_orm(column_type = "Text")]
        pub value: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `events`: what happened to runs and jobs, for `dstack event`.
pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub project_id: String,
        pub recorded_at: ChronoDateTimeUtc,
        pub actor: Option<String>,
        pub target_type: String,
        pub target_id: String,
        pub target_name: String,
        pub message: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `file_archives`: who uploaded which archive (`files:`).
pub mod file_archive {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "file_archives")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub blob_hash: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
