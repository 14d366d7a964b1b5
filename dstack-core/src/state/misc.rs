//! Secrets, events and uploaded file archives.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

use super::{Db, Result, event, file_archive, is_unique_violation, secret};

impl Db {
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
        let saved = match self.secret(project_id, name).await? {
            Some(existing) => {
                let mut model: secret::ActiveModel = existing.into();
                model.value = Set(value.to_string());
                model.update(&self.conn).await?
            }
            None => {
                secret::ActiveModel {
                    id: Set(uuid::Uuid::new_v4().to_string()),
                    project_id: Set(project_id.to_string()),
                    name: Set(name.to_string()),
                    value: Set(value.to_string()),
                    created_at: Set(now),
                }
                .insert(&self.conn)
                .await?
            }
        };
        self.written();
        Ok(saved)
    }

    /// Deletes secrets, in one transaction.
    pub async fn delete_secrets(&self, project_id: &str, names: &[String]) -> Result<()> {
        let txn = self.conn.begin().await?;
        secret::Entity::delete_many()
            .filter(secret::Column::ProjectId.eq(project_id))
            .filter(secret::Column::Name.is_in(names.iter().cloned()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.written();
        Ok(())
    }

    /// Records events.
    pub async fn record_events(&self, events: Vec<event::Model>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        event::Entity::insert_many(events.into_iter().map(event::ActiveModel::from))
            .exec(&self.conn)
            .await?;
        Ok(())
    }

    /// Events of some projects, oldest first, after a time.
    pub async fn events(
        &self,
        project_ids: &[String],
        target_ids: Option<&[String]>,
        after: Option<DateTime<Utc>>,
        limit: u64,
        ascending: bool,
    ) -> Result<Vec<event::Model>> {
        let mut q = event::Entity::find()
            .filter(event::Column::ProjectId.is_in(project_ids.iter().cloned()));
        if let Some(ids) = target_ids {
            q = q.filter(event::Column::TargetId.is_in(ids.iter().cloned()));
        }
        if let Some(after) = after {
            q = q.filter(if ascending {
                event::Column::RecordedAt.gt(after)
            } else {
                event::Column::RecordedAt.lt(after)
            });
        }
        let q = if ascending {
            q.order_by_asc(event::Column::RecordedAt)
        } else {
            q.order_by_desc(event::Column::RecordedAt)
        };
        Ok(q.limit(limit).all(&self.conn).await?)
    }

    /// Records who uploaded an archive (idempotent per user and hash).
    pub async fn record_archive(&self, id: &str, user_id: &str, hash: &str) -> Result<()> {
        let inserted = file_archive::ActiveModel {
            id: Set(id.to_string()),
            user_id: Set(user_id.to_string()),
            blob_hash: Set(hash.to_string()),
            created_at: Set(Utc::now()),
        }
        .insert(&self.conn)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// An archive by id, if `user_id` uploaded it.
    pub async fn archive_of(&self, id: &str, user_id: &str) -> Result<Option<file_archive::Model>> {
        Ok(file_archive::Entity::find_by_id(id.to_string())
            .filter(file_archive::Column::UserId.eq(user_id))
            .one(&self.conn)
            .await?)
    }

    /// A user's archive by hash.
    pub async fn archive_by_hash(
        &self,
        user_id: &str,
        hash: &str,
    ) -> Result<Option<file_archive::Model>> {
        Ok(file_archive::Entity::find()
            .filter(file_archive::Column::UserId.eq(user_id))
            .filter(file_archive::Column::BlobHash.eq(hash))
            .one(&self.conn)
            .await?)
    }
}
