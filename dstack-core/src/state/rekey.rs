//! Bringing stored values under the first key: at start, values stored without encryption (or
//! with another key) are decrypted and encrypted again with the first key of `config.yml`, so
//! an existing plain database is encrypted once a key is configured, and a rotated-out key may
//! be removed after one start with both.

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait, Set, TransactionTrait};

use super::{Db, Result, StateError, project, secret, user};

/// How many values [`Db::reencrypt`] rewrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reencrypted {
    /// User tokens.
    pub tokens: usize,
    /// Project secrets.
    pub secrets: usize,
}

impl Db {
    /// Re-encrypts, in one transaction, every token and secret not stored under the first key.
    /// Values already under it are recognised by their prefix and not decrypted. A value that
    /// no configured key decrypts is [`StateError::Undecryptable`], naming it (never its data)
    /// and nothing is written.
    pub async fn reencrypt(&self) -> Result<Reencrypted> {
        let mut done = Reencrypted::default();
        let txn = self.conn.begin().await?;
        for u in user::Entity::find().all(&txn).await? {
            if self.keys.is_current(&u.token) {
                continue;
            }
            let token =
                self.keys
                    .decrypt(&u.token)
                    .map_err(|source| StateError::Undecryptable {
                        what: format!("the token of user `{}`", u.username),
                        source,
                    })?;
            user::ActiveModel {
                id: Set(u.id),
                token: Set(self.encrypt(&token)?),
                ..Default::default()
            }
            .update(&txn)
            .await?;
            done.tokens += 1;
        }
        for s in secret::Entity::find().all(&txn).await? {
            if self.keys.is_current(&s.value) {
                continue;
            }
            let value = match self.keys.decrypt(&s.value) {
                Ok(value) => value,
                Err(source) => {
                    let project = project::Entity::find_by_id(s.project_id.clone())
                        .one(&txn)
                        .await?
                        .map_or(s.project_id, |p| p.name);
                    return Err(StateError::Undecryptable {
                        what: format!("secret `{}` of project `{project}`", s.name),
                        source,
                    });
                }
            };
            secret::ActiveModel {
                id: Set(s.id),
                value: Set(self.encrypt(&value)?),
                ..Default::default()
            }
            .update(&txn)
            .await?;
            done.secrets += 1;
        }
        txn.commit().await?;
        if done == Reencrypted::default() {
            return Ok(done);
        }
        self.users_written();
        if self.conn.get_database_backend() == DbBackend::Sqlite {
            // The rows' earlier versions (plain text, or under a retired key) stay in free
            // pages and in the write-ahead log until SQLite happens to reuse them: rebuild the
            // file and empty the log. (PostgreSQL keeps old row versions until it vacuums.)
            self.conn.execute_unprepared("VACUUM").await?;
            self.conn
                .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await?;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Database};
    use sea_orm_migration::MigratorTrait;
    use serde_json::json;

    use super::super::{Db, Keys, StateError, migration::Migrator};
    use super::Reencrypted;

    const KEY1: &str = "E5yzN6V3XvBq/f085ISWFCdgnOGED0kuFaAkASlmmO4=";
    const KEY2: &str = "cR2r1JmkPyL6edBQeHKz6ZBjCfS2oWk87Gc2G3wHVoA=";

    fn keys(list: serde_json::Value) -> Keys {
        Keys::from_config(&json!({ "keys": list })).expect("valid keys")
    }

    /// Every byte SQLite keeps for the database (the file, its WAL and journal).
    fn database_bytes(path: &std::path::Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-journal"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            bytes.extend(std::fs::read(&file).unwrap_or_default());
        }
        bytes
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[tokio::test]
    async fn a_plain_database_is_migrated_then_encrypted_and_rotated_at_start() {
        let dir = std::env::temp_dir().join(format!("dstack-rekey-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("db.sqlite");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        // A database from before encryption, values stored as given.
        let conn = Database::connect(&url).await.expect("database");
        Migrator::up(&conn, Some(3))
            .await
            .expect("earlier migrations");
        conn.execute_unprepared(
            "INSERT INTO users (id, username, token, global_role, email, active, created_at, \
             deleted) VALUES ('u1', 'admin', 'plain-token-1', 'admin', NULL, true, \
             '2026-01-01T00:00:00+00:00', false)",
        )
        .await
        .expect("a user");
        conn.execute_unprepared(
            "INSERT INTO secrets (id, project_id, name, value, created_at) VALUES \
             ('s1', 'p1', 'API', 'plain-value-1', '2026-01-01T00:00:00+00:00')",
        )
        .await
        .expect("a secret");
        // Enough rows that the updated pages are not simply rewritten whole: without `VACUUM`
        // the plain values stay in the file's free space.
        for i in 0..300 {
            conn.execute_unprepared(&format!(
                "INSERT INTO secrets (id, project_id, name, value, created_at) VALUES \
                 ('s1-{i}', 'p2', 'N{i}', 'plain-value-1-{i}', '2026-01-01T00:00:00+00:00')"
            ))
            .await
            .expect("a secret");
        }
        conn.close().await.expect("closed");

        // The migration: tokens found by hash, values marked as stored without encryption.
        let db = Db::connect(&url).await.expect("migrated");
        let admin = db
            .user_by_token("plain-token-1")
            .await
            .expect("query")
            .expect("found by its hash");
        assert_eq!(admin.stored_token, "enc:identity:noname:plain-token-1");
        assert_eq!(admin.token_hash, super::super::token_hash("plain-token-1"));
        let secret = db.secret("p1", "API").await.expect("query").expect("kept");
        assert_eq!(secret.value, "enc:identity:noname:plain-value-1");
        assert_eq!(
            db.reencrypt().await.expect("nothing to do"),
            Reencrypted::default()
        );
        drop(db);

        // A key configured: everything is encrypted, once, and gone from the file's bytes.
        let db = Db::open(
            &url,
            keys(json!([{"type": "aes", "name": "key1", "secret": KEY1}])),
        )
        .await
        .expect("opened");
        let done = db.reencrypt().await.expect("encrypted");
        assert_eq!(
            done,
            Reencrypted {
                tokens: 1,
                secrets: 301
            }
        );
        assert_eq!(db.reencrypt().await.expect("again"), Reencrypted::default());
        let admin = db
            .user_by_token("plain-token-1")
            .await
            .expect("query")
            .expect("still found");
        assert!(admin.stored_token.starts_with("enc:aes:key1:"));
        assert_eq!(
            db.decrypt(&admin.stored_token).expect("decrypts"),
            "plain-token-1"
        );
        let secret = db.secret("p1", "API").await.expect("query").expect("kept");
        assert!(secret.value.starts_with("enc:aes:key1:"));
        let bytes = database_bytes(&file);
        assert!(
            !contains(&bytes, "plain-value-1"),
            "the secret is in the file"
        );
        assert!(
            !contains(&bytes, "plain-token-1"),
            "the token is in the file"
        );
        drop(db);

        // Rotation: key2 first, key1 still listed; then key1 may go.
        let both = keys(json!([
            {"type": "aes", "name": "key2", "secret": KEY2},
            {"type": "aes", "name": "key1", "secret": KEY1},
        ]));
        let db = Db::open(&url, both).await.expect("opened");
        assert_eq!(
            db.reencrypt().await.expect("rotated"),
            Reencrypted {
                tokens: 1,
                secrets: 301
            }
        );
        drop(db);
        let db = Db::open(
            &url,
            keys(json!([{"type": "aes", "name": "key2", "secret": KEY2}])),
        )
        .await
        .expect("opened");
        assert_eq!(
            db.reencrypt().await.expect("current"),
            Reencrypted::default()
        );
        let secret = db.secret("p1", "API").await.expect("query").expect("kept");
        assert_eq!(db.decrypt(&secret.value).expect("key2"), "plain-value-1");
        drop(db);

        // A key removed while values still need it: refused, naming the value and the key.
        let db = Db::open(
            &url,
            keys(json!([{"type": "aes", "name": "key1", "secret": KEY1}])),
        )
        .await
        .expect("opened");
        match db.reencrypt().await {
            Err(e @ StateError::Undecryptable { .. }) => assert_eq!(
                e.to_string(),
                "cannot decrypt the token of user `admin`: no key in `encryption.keys` \
                 decrypts a value encrypted with the aes key `key2`"
            ),
            other => panic!("expected an undecryptable value, got {other:?}"),
        }
        drop(db);

        // Identity first: values are decrypted back to plain text.
        let db = Db::open(
            &url,
            keys(json!([{"type": "identity"}, {"type": "aes", "name": "key2", "secret": KEY2}])),
        )
        .await
        .expect("opened");
        db.reencrypt().await.expect("decrypted");
        let secret = db.secret("p1", "API").await.expect("query").expect("kept");
        assert_eq!(secret.value, "enc:identity:noname:plain-value-1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
