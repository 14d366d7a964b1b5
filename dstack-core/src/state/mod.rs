//! Persistent state through sea-orm: SQLite by default, PostgreSQL when the URL says so.
//!
//! Rows come out typed (statuses, reasons and roles as enums; a stored value that is not one of
//! them is [`StateError::Corrupt`]); JSON documents (run and job specs) are stored as text so
//! both engines store the same thing. Writes that span rows run in one transaction.
//!
//! Project secrets and user tokens are stored encrypted with the keys of `config.yml`
//! ([`crypto`]); tokens are found by their SHA-256 (`token_hash`), never by decrypting rows.

pub mod crypto;
pub mod entity;
pub mod migration;
mod misc;
mod rekey;
mod runs;
mod users;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

pub use crypto::{CryptoError, Keys, token_hash};
pub use entity::{event, file_archive, job, member, project, run, secret, user};
pub use misc::EventsQuery;
pub use rekey::Reencrypted;
pub use runs::{JobRow, JobRuntime, RunRow, RunsQuery};
pub use users::{MemberRow, UserRow};

/// A state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A unique constraint refused the write (another row has that name).
    #[error("{0} exists already")]
    Conflict(String),
    /// A value could not be encrypted or decrypted.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A stored value could not be decrypted with the configured keys.
    #[error("cannot decrypt {what}: {source}")]
    Undecryptable {
        /// Which value (a user's token, a project's secret), never its data.
        what: String,
        /// Why.
        source: CryptoError,
    },
}

/// Result of state operations.
pub type Result<T> = std::result::Result<T, StateError>;

/// A handle on the database.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    /// Bumped after every committed write through this handle, so readers can cache derived
    /// views: a view computed from reads that started at generation `g` is valid while the
    /// generation is still `g`.
    generation: Arc<AtomicU64>,
    /// Bumped after writes to users and memberships (token caches).
    user_generation: Arc<AtomicU64>,
    /// Encrypt secrets and tokens on the way in, decrypt them when asked.
    keys: Keys,
}

impl Db {
    /// Connects (`sqlite://path?mode=rwc` or `postgres://...`) and applies pending migrations;
    /// values are stored without encryption (the `identity` key).
    pub async fn connect(url: &str) -> Result<Db> {
        Db::open(url, Keys::identity()).await
    }

    /// Connects and applies pending migrations; new secrets and tokens are encrypted with the
    /// first of `keys`, stored ones decrypted with any of them. See [`Db::reencrypt`] for the
    /// values stored under other keys.
    pub async fn open(url: &str, keys: Keys) -> Result<Db> {
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
            generation: Arc::default(),
            user_generation: Arc::default(),
            keys,
        })
    }

    /// The plain text of a stored secret value or token.
    pub fn decrypt(&self, stored: &str) -> Result<String> {
        Ok(self.keys.decrypt(stored)?)
    }

    /// The stored form of a value: encrypted with the first key.
    fn encrypt(&self, plaintext: &str) -> Result<String> {
        Ok(self.keys.encrypt(plaintext)?)
    }

    /// The keys values are encrypted with.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A number that changes after every write through this handle.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A number that changes after every write to users or memberships.
    pub fn user_generation(&self) -> u64 {
        self.user_generation.load(Ordering::Acquire)
    }

    /// Called after a write has committed.
    fn written(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn users_written(&self) {
        self.user_generation.fetch_add(1, Ordering::AcqRel);
        self.written();
    }

    /// The underlying connection.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }
}

/// Whether a database error is a unique-constraint violation.
fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

fn corrupt(e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt(e.to_string())
}
