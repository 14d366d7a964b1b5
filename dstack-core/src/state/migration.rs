//! Schema migrations, applied in order at server start. Never edit a migration that has shipped:
//! add a new one (`mYYYYMMDD_NNNNNN_what.rs` style names).

use sea_orm_migration::prelude::*;

/// All migrations, oldest first.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M20261122000001Init),
            Box::new(M20261122000002Secrets),
            Box::new(M20261201000003Core),
            Box::new(M20261201000004Encryption),
        ]
    }
}

/// Users, projects, members, runs and jobs.
pub struct M20261122000001Init;

impl MigrationName for M20261122000001Init {
    fn name(&self) -> &str {
        "m20261122_000001_init"
    }
}

fn id(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .string()
        .not_null()
        .primary_key()
        .to_owned()
}

fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}

fn text_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().null().to_owned()
}

fn time(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn time_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn boolean(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).boolean().not_null().to_owned()
}

fn int(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

fn int_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().to_owned()
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M20261122000001Init {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("users")
                .col(id("id"))
                .col(ColumnDef::new("username").string().not_null().unique_key())
                .col(ColumnDef::new("token").string().not_null().unique_key())
                .col(text("global_role"))
                .col(text_null("email"))
                .col(boolean("active"))
                .col(time("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("projects")
                .col(id("id"))
                .col(ColumnDef::new("name").string().not_null().unique_key())
                .col(text("owner_id"))
                .col(boolean("is_public"))
                .col(time("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("members")
                .col(ColumnDef::new("project_id").string().not_null())
                .col(ColumnDef::new("user_id").string().not_null())
                .col(text("project_role"))
                .primary_key(Index::create().col("project_id").col("user_id"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("runs")
                .col(id("id"))
                .col(ColumnDef::new("project_id").string().not_null())
                .col(text("user_name"))
                .col(ColumnDef::new("run_name").string().not_null())
                .col(time("submitted_at"))
                .col(time("last_processed_at"))
                .col(text("status"))
                .col(text_null("termination_reason"))
                .col(text("run_spec"))
                .col(text_null("service_spec"))
                .col(int("deployment_num"))
                .col(boolean("deleted"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("runs_project_name")
                .table("runs")
                .col("project_id")
                .col("run_name")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("jobs")
                .col(id("id"))
                .col(ColumnDef::new("run_id").string().not_null())
                .col(int("replica_num"))
                .col(int("job_num"))
                .col(int("submission_num"))
                .col(text("job_spec"))
                .col(text("status"))
                .col(text_null("termination_reason"))
                .col(text_null("termination_reason_message"))
                .col(int_null("exit_status"))
                .col(time("submitted_at"))
                .col(time("last_processed_at"))
                .col(time_null("finished_at"))
                .col(text_null("runtime"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("jobs_run")
                .table("jobs")
                .col("run_id")
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["jobs", "runs", "members", "projects", "users"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// Project secrets.
pub struct M20261122000002Secrets;

impl MigrationName for M20261122000002Secrets {
    fn name(&self) -> &str {
        "m20261122_000002_secrets"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M20261122000002Secrets {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("secrets")
                .col(id("id"))
                .col(ColumnDef::new("project_id").string().not_null())
                .col(ColumnDef::new("name").string().not_null())
                .col(text("value"))
                .col(time("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("secrets_project_name")
                .table("secrets")
                .col("project_id")
                .col("name")
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("secrets").to_owned())
            .await
    }
}

/// The server's core: one active run per name (enforced by a unique index on `active_name`),
/// stop requests and resubmission attempts on runs, deleted users, run events and the owners of
/// uploaded file archives.
pub struct M20261201000003Core;

impl MigrationName for M20261201000003Core {
    fn name(&self) -> &str {
        "m20261201_000003_core"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M20261201000003Core {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for col in [
            ColumnDef::new("active_name").string().null().to_owned(),
            ColumnDef::new("stop_request").string().null().to_owned(),
            ColumnDef::new("resubmission_attempt")
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        ] {
            let mut col = col;
            m.alter_table(Table::alter().table("runs").add_column(&mut col).to_owned())
                .await?;
        }
        m.alter_table(
            Table::alter()
                .table("projects")
                .add_column(
                    ColumnDef::new("deleted")
                        .boolean()
                        .not_null()
                        .default(false)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("users")
                .add_column(
                    ColumnDef::new("deleted")
                        .boolean()
                        .not_null()
                        .default(false)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        // The newest unfinished run of each name keeps the name; older duplicates (left by
        // concurrent applies before this migration) stay active without it.
        let db = m.get_connection();
        db.execute_unprepared(
            "UPDATE runs SET active_name = run_name WHERE deleted = false \
             AND status NOT IN ('terminated', 'failed', 'done') \
             AND NOT EXISTS (SELECT 1 FROM runs newer WHERE newer.project_id = runs.project_id \
               AND newer.run_name = runs.run_name AND newer.deleted = false \
               AND newer.status NOT IN ('terminated', 'failed', 'done') \
               AND newer.submitted_at > runs.submitted_at)",
        )
        .await?;
        m.create_index(
            Index::create()
                .name("runs_active_name")
                .table("runs")
                .col("project_id")
                .col("active_name")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("runs_status")
                .table("runs")
                .col("status")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("runs_submitted")
                .table("runs")
                .col("project_id")
                .col("submitted_at")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("jobs_status")
                .table("jobs")
                .col("status")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("events")
                .col(id("id"))
                .col(ColumnDef::new("project_id").string().not_null())
                .col(time("recorded_at"))
                .col(text_null("actor"))
                .col(text("target_type"))
                .col(text("target_id"))
                .col(text("target_name"))
                .col(text("message"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("events_project_time")
                .table("events")
                .col("project_id")
                .col("recorded_at")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("file_archives")
                .col(id("id"))
                .col(ColumnDef::new("user_id").string().not_null())
                .col(ColumnDef::new("blob_hash").string().not_null())
                .col(time("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("file_archives_user_hash")
                .table("file_archives")
                .col("user_id")
                .col("blob_hash")
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["file_archives", "events"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// Encrypted values at rest: `users.token_hash` (the hex SHA-256 of the token, unique; requests
/// are authenticated by it, so tokens can be stored encrypted), and the stored tokens and secret
/// values in the self-describing form `enc:<key type>:<key name>:<data>`. Existing values become
/// `enc:identity:noname:<value>` (as the original's migration does); the server re-encrypts them
/// with the configured key at start (`Db::reencrypt`).
pub struct M20261201000004Encryption;

impl MigrationName for M20261201000004Encryption {
    fn name(&self) -> &str {
        "m20261201_000004_encryption"
    }
}

/// What stored values without encryption start with.
const IDENTITY_PREFIX: &str = "enc:identity:noname:";

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M20261201000004Encryption {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("users")
                .add_column(
                    ColumnDef::new("token_hash")
                        .string()
                        .not_null()
                        .default("")
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        let rows = db
            .query_all(
                &Query::select()
                    .columns(["id", "token"])
                    .from("users")
                    .to_owned(),
            )
            .await?;
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let token: String = row.try_get("", "token")?;
            db.execute(
                &Query::update()
                    .table("users")
                    .value("token_hash", super::crypto::token_hash(&token))
                    .and_where(Expr::col("id").eq(id))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("users_token_hash")
                .table("users")
                .col("token_hash")
                .unique()
                .to_owned(),
        )
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE users SET token = '{IDENTITY_PREFIX}' || token"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE secrets SET value = '{IDENTITY_PREFIX}' || value"
        ))
        .await?;
        Ok(())
    }

    /// Assumes every value was stored without encryption first (a server started with only the
    /// `identity` key does that), as the original's downgrade does.
    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let from = IDENTITY_PREFIX.len() + 1;
        db.execute_unprepared(&format!(
            "UPDATE users SET token = SUBSTR(token, {from}) WHERE token LIKE 'enc:identity:%'"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE secrets SET value = SUBSTR(value, {from}) WHERE value LIKE 'enc:identity:%'"
        ))
        .await?;
        m.drop_index(
            Index::drop()
                .name("users_token_hash")
                .table("users")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("users")
                .drop_column("token_hash")
                .to_owned(),
        )
        .await
    }
}
