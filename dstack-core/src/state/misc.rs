//! Secrets, events and uploaded file archives.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};

use super::{Db, Result, event, file_archive, is_unique_violation, secret};

/// Which events to list. Filters that are `None` do not filter.
#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    /// Only events of these projects.
    pub project_ids: Option<Vec<String>>,
    /// Only events about these targets (run or job ids).
    pub target_ids: Option<Vec<String>>,
    /// Only events about targets of these types (`run`, `job`).
    pub target_types: Option<Vec<String>>,
    /// Only events by these users (names), and by the server itself when the flag is set.
    pub actors: Option<(Vec<String>, bool)>,
    /// Only events after (ascending) or before this one: `(recorded_at, id)`; without an id,
    /// only events recorded strictly after (before) that time.
    pub after: Option<(DateTime<Utc>, Option<String>)>,
    /// At most this many.
    pub limit: u64,
    /// Oldest first instead of newest first.
    pub ascending: bool,
}

impl Db {
    /// The secrets of a project, by name, with their values as stored ([`Db::decrypt`] gives
    /// a value).
    pub async fn secrets(&self, project_id: &str) -> Result<Vec<secret::Model>> {
        Ok(secret::Entity::find()
            .filter(secret::Column::ProjectId.eq(project_id))
            .order_by_asc(secret::Column::Name)
            .all(&self.conn)
            .await?)
    }

    /// A secret by name, its value as stored.
    pub async fn secret(&self, project_id: &str, name: &str) -> Result<Option<secret::Model>> {
        Ok(secret::Entity::find()
            .filter(secret::Column::ProjectId.eq(project_id))
            .filter(secret::Column::Name.eq(name))
            .one(&self.conn)
            .await?)
    }

    /// Creates or updates a secret; the value is stored encrypted with the first key.
    pub async fn put_secret(
        &self,
        project_id: &str,
        name: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<secret::Model> {
        let value = self.encrypt(value)?;
        let saved = match self.secret(project_id, name).await? {
            Some(existing) => {
                let mut model: secret::ActiveModel = existing.into();
                model.value = Set(value);
                model.update(&self.conn).await?
            }
            None => {
                secret::ActiveModel {
                    id: Set(uuid::Uuid::new_v4().to_string()),
                    project_id: Set(project_id.to_string()),
                    name: Set(name.to_string()),
                    value: Set(value),
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

    /// A page of events, newest first (or oldest first): ordered by `(recorded_at, id)` with
    /// the id reversed, as the original orders them, so that `(recorded_at, id)` of the last
    /// event of a page is where the next page starts. Times compare at the microsecond the API
    /// shows them with.
    pub async fn events(&self, q: &EventsQuery) -> Result<Vec<event::Model>> {
        let mut find = event::Entity::find();
        if let Some(ids) = &q.project_ids {
            find = find.filter(event::Column::ProjectId.is_in(ids.iter().cloned()));
        }
        if let Some(ids) = &q.target_ids {
            find = find.filter(event::Column::TargetId.is_in(ids.iter().cloned()));
        }
        if let Some(types) = &q.target_types {
            find = find.filter(event::Column::TargetType.is_in(types.iter().cloned()));
        }
        if let Some((names, system)) = &q.actors {
            let mut any = Condition::any().add(event::Column::Actor.is_in(names.iter().cloned()));
            if *system {
                any = any.add(event::Column::Actor.is_null());
            }
            find = find.filter(any);
        }
        if let Some((at, prev_id)) = &q.after {
            let lo = at.trunc_subsecs(6);
            let hi = lo + chrono::TimeDelta::microseconds(1);
            let same_time = Condition::all()
                .add(event::Column::RecordedAt.gte(lo))
                .add(event::Column::RecordedAt.lt(hi));
            let (later, tie) = if q.ascending {
                (
                    event::Column::RecordedAt.gte(hi),
                    prev_id
                        .as_ref()
                        .map(|id| same_time.add(event::Column::Id.lt(id.as_str()))),
                )
            } else {
                (
                    event::Column::RecordedAt.lt(lo),
                    prev_id
                        .as_ref()
                        .map(|id| same_time.add(event::Column::Id.gt(id.as_str()))),
                )
            };
            let mut page = Condition::any().add(later);
            if let Some(tie) = tie {
                page = page.add(tie);
            }
            find = find.filter(page);
        }
        let find = if q.ascending {
            find.order_by_asc(event::Column::RecordedAt)
                .order_by_desc(event::Column::Id)
        } else {
            find.order_by_desc(event::Column::RecordedAt)
                .order_by_asc(event::Column::Id)
        };
        Ok(find.limit(q.limit).all(&self.conn).await?)
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::{Db, EventsQuery, event};

    fn ev(id: &str, nanos: u32, target: &str, actor: Option<&str>) -> event::Model {
        event::Model {
            id: id.into(),
            project_id: "p".into(),
            // Recorded with nanoseconds (events of one pass share the time), shown (and sent
            // back) with microseconds.
            recorded_at: Utc
                .timestamp_opt(1_700_000_000, nanos)
                .single()
                .expect("a time"),
            actor: actor.map(str::to_string),
            target_type: "run".into(),
            target_id: target.into(),
            target_name: target.into(),
            message: id.into(),
        }
    }

    fn ids(rows: &[event::Model]) -> Vec<&str> {
        rows.iter().map(|e| e.id.as_str()).collect()
    }

    #[tokio::test]
    async fn event_pages_follow_time_then_id() {
        let dir = std::env::temp_dir().join(format!("dstack-events-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display());
        let db = Db::connect(&url).await.expect("database");
        db.record_events(vec![
            ev("a", 1_000_456, "r1", None),
            ev("b", 1_000_456, "r1", Some("admin")),
            ev("c", 2_000_789, "r2", None),
            ev("d", 3_000_000, "r2", Some("bob")),
        ])
        .await
        .expect("recorded");
        let q = |after, ascending, limit| EventsQuery {
            after,
            ascending,
            limit,
            ..EventsQuery::default()
        };
        let newest = db.events(&q(None, false, 10)).await.expect("events");
        assert_eq!(ids(&newest), ["d", "c", "a", "b"]);
        let oldest = db.events(&q(None, true, 2)).await.expect("events");
        assert_eq!(ids(&oldest), ["b", "a"]);
        // The next page starts after the last event as the API showed it (microseconds).
        let shown = Utc
            .timestamp_opt(1_700_000_000, 1_000_000)
            .single()
            .expect("a time");
        let next = db
            .events(&q(Some((shown, Some("a".into()))), true, 10))
            .await
            .expect("events");
        assert_eq!(ids(&next), ["c", "d"]);
        let next = db
            .events(&q(Some((shown, Some("b".into()))), true, 10))
            .await
            .expect("events");
        assert_eq!(ids(&next), ["a", "c", "d"]);
        let older = db
            .events(&q(Some((shown, Some("a".into()))), false, 10))
            .await
            .expect("events");
        assert_eq!(ids(&older), ["b"]);
        let before = db
            .events(&q(Some((shown, None)), false, 10))
            .await
            .expect("events");
        assert!(before.is_empty());
        let filtered = db
            .events(&EventsQuery {
                target_ids: Some(vec!["r2".into()]),
                actors: Some((vec!["bob".into()], false)),
                limit: 10,
                ..EventsQuery::default()
            })
            .await
            .expect("events");
        assert_eq!(ids(&filtered), ["d"]);
        let system = db
            .events(&EventsQuery {
                actors: Some((Vec::new(), true)),
                project_ids: Some(vec!["p".into()]),
                target_types: Some(vec!["run".into()]),
                limit: 10,
                ..EventsQuery::default()
            })
            .await
            .expect("events");
        assert_eq!(ids(&system), ["c", "a"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
