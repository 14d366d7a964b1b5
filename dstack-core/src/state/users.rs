//! Users, projects and memberships.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use super::{
    Db, Result, StateError, corrupt, is_unique_violation, member, project, token_hash, user,
};
use crate::auth::{GlobalRole, ProjectRole};

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Id (UUID).
    pub id: String,
    /// Name.
    pub username: String,
    /// The API token as stored (`enc:<key type>:<key name>:<data>`); [`Db::decrypt`] gives
    /// the token itself.
    pub stored_token: String,
    /// The token's hex SHA-256, what requests are authenticated by.
    pub token_hash: String,
    /// Role on the server.
    pub global_role: GlobalRole,
    /// E-mail.
    pub email: Option<String>,
    /// May log in.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    /// Whether the user is a global admin.
    pub fn is_admin(&self) -> bool {
        self.global_role == GlobalRole::Admin
    }
}

impl TryFrom<user::Model> for UserRow {
    type Error = StateError;
    fn try_from(m: user::Model) -> Result<UserRow> {
        Ok(UserRow {
            global_role: GlobalRole::parse(&m.global_role).map_err(corrupt)?,
            id: m.id,
            username: m.username,
            stored_token: m.token,
            token_hash: m.token_hash,
            email: m.email,
            active: m.active,
            created_at: m.created_at,
        })
    }
}

/// A member of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The user.
    pub user: UserRow,
    /// Their role.
    pub role: ProjectRole,
}

fn users(models: Vec<user::Model>) -> Result<Vec<UserRow>> {
    models.into_iter().map(UserRow::try_from).collect()
}

impl Db {
    /// A live user by token (found by its hash: nothing is decrypted).
    pub async fn user_by_token(&self, token: &str) -> Result<Option<UserRow>> {
        self.user_by_token_hash(&token_hash(token)).await
    }

    /// A live user by the hex SHA-256 of their token.
    pub async fn user_by_token_hash(&self, hash: &str) -> Result<Option<UserRow>> {
        user::Entity::find()
            .filter(user::Column::TokenHash.eq(hash))
            .filter(user::Column::Deleted.eq(false))
            .one(&self.conn)
            .await?
            .map(UserRow::try_from)
            .transpose()
    }

    /// A live user by name.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>> {
        user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .filter(user::Column::Deleted.eq(false))
            .one(&self.conn)
            .await?
            .map(UserRow::try_from)
            .transpose()
    }

    /// A user by id (also a deleted one: projects name their owner).
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        user::Entity::find_by_id(id.to_string())
            .one(&self.conn)
            .await?
            .map(UserRow::try_from)
            .transpose()
    }

    /// All live users, oldest first.
    pub async fn users(&self) -> Result<Vec<UserRow>> {
        users(
            user::Entity::find()
                .filter(user::Column::Deleted.eq(false))
                .order_by_asc(user::Column::CreatedAt)
                .all(&self.conn)
                .await?,
        )
    }

    /// Creates a user; [`StateError::Conflict`] if the name is taken.
    pub async fn create_user(
        &self,
        username: &str,
        token: &str,
        global_role: GlobalRole,
        email: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<UserRow> {
        let model = user::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            username: Set(username.to_string()),
            token: Set(self.encrypt(token)?),
            token_hash: Set(token_hash(token)),
            global_role: Set(global_role.as_str().to_string()),
            email: Set(email),
            active: Set(true),
            created_at: Set(now),
            deleted: Set(false),
        };
        let created = model.insert(&self.conn).await.map_err(|e| {
            if is_unique_violation(&e) {
                StateError::Conflict(format!("user {username}"))
            } else {
                e.into()
            }
        })?;
        self.users_written();
        UserRow::try_from(created)
    }

    /// Replaces a user's token.
    pub async fn set_user_token(&self, user: &UserRow, token: &str) -> Result<UserRow> {
        let model = user::ActiveModel {
            id: Set(user.id.clone()),
            token: Set(self.encrypt(token)?),
            token_hash: Set(token_hash(token)),
            ..Default::default()
        };
        let updated = model.update(&self.conn).await?;
        self.users_written();
        UserRow::try_from(updated)
    }

    /// Changes a user's role and e-mail.
    pub async fn update_user(
        &self,
        user: &UserRow,
        global_role: GlobalRole,
        email: Option<String>,
    ) -> Result<UserRow> {
        let model = user::ActiveModel {
            id: Set(user.id.clone()),
            global_role: Set(global_role.as_str().to_string()),
            email: Set(email),
            ..Default::default()
        };
        let updated = model.update(&self.conn).await?;
        self.users_written();
        UserRow::try_from(updated)
    }

    /// Deletes users: their tokens stop working, their memberships go, their names are freed.
    pub async fn delete_users(&self, ids: &[String]) -> Result<()> {
        let txn = self.conn.begin().await?;
        for id in ids {
            // A random token nobody knows replaces theirs (the columns are unique).
            let token = format!("deleted-{}", uuid::Uuid::new_v4());
            let model = user::ActiveModel {
                id: Set(id.clone()),
                deleted: Set(true),
                active: Set(false),
                token: Set(self.encrypt(&token)?),
                token_hash: Set(token_hash(&token)),
                username: Set(format!("deleted-{id}")),
                ..Default::default()
            };
            model.update(&txn).await?;
            member::Entity::delete_many()
                .filter(member::Column::UserId.eq(id.as_str()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        self.users_written();
        Ok(())
    }

    /// A project by name.
    pub async fn project_by_name(&self, name: &str) -> Result<Option<project::Model>> {
        Ok(project::Entity::find()
            .filter(project::Column::Name.eq(name))
            .filter(project::Column::Deleted.eq(false))
            .one(&self.conn)
            .await?)
    }

    /// A project by id.
    pub async fn project_by_id(&self, id: &str) -> Result<Option<project::Model>> {
        Ok(project::Entity::find_by_id(id.to_string())
            .one(&self.conn)
            .await?)
    }

    /// All projects, oldest first.
    pub async fn projects(&self) -> Result<Vec<project::Model>> {
        Ok(project::Entity::find()
            .filter(project::Column::Deleted.eq(false))
            .order_by_asc(project::Column::CreatedAt)
            .all(&self.conn)
            .await?)
    }

    /// Creates a project owned by `owner`, who becomes its admin, in one transaction;
    /// [`StateError::Conflict`] if the name is taken.
    pub async fn create_project(
        &self,
        name: &str,
        owner: &UserRow,
        is_public: bool,
        now: DateTime<Utc>,
    ) -> Result<project::Model> {
        let txn = self.conn.begin().await?;
        let model = project::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(name.to_string()),
            owner_id: Set(owner.id.clone()),
            is_public: Set(is_public),
            created_at: Set(now),
            deleted: Set(false),
        };
        let project = model.insert(&txn).await.map_err(|e| {
            if is_unique_violation(&e) {
                StateError::Conflict(format!("project {name}"))
            } else {
                e.into()
            }
        })?;
        member::ActiveModel {
            project_id: Set(project.id.clone()),
            user_id: Set(owner.id.clone()),
            project_role: Set(ProjectRole::Admin.as_str().to_string()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        self.users_written();
        Ok(project)
    }

    /// Deletes projects: their names are freed (a deleted project keeps its rows, renamed).
    pub async fn delete_projects(
        &self,
        projects: &[project::Model],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let txn = self.conn.begin().await?;
        for p in projects {
            project::ActiveModel {
                id: Set(p.id.clone()),
                name: Set(format!("_deleted_{}_{}", now.timestamp(), p.id)),
                deleted: Set(true),
                ..Default::default()
            }
            .update(&txn)
            .await?;
        }
        txn.commit().await?;
        self.users_written();
        Ok(())
    }

    /// Makes a project public or private.
    pub async fn set_project_public(
        &self,
        project: &project::Model,
        is_public: bool,
    ) -> Result<project::Model> {
        let updated = project::ActiveModel {
            id: Set(project.id.clone()),
            is_public: Set(is_public),
            ..Default::default()
        }
        .update(&self.conn)
        .await?;
        self.users_written();
        Ok(updated)
    }

    /// The names of a project's unfinished runs.
    pub async fn active_run_names(&self, project_id: &str) -> Result<Vec<String>> {
        Ok(super::run::Entity::find()
            .filter(super::run::Column::ProjectId.eq(project_id))
            .filter(super::run::Column::Status.is_not_in(["terminated", "failed", "done"]))
            .all(&self.conn)
            .await?
            .into_iter()
            .map(|r| r.run_name)
            .collect())
    }

    /// The members of a project with their roles, in the order they joined.
    pub async fn members(&self, project: &project::Model) -> Result<Vec<MemberRow>> {
        let rows = member::Entity::find()
            .filter(member::Column::ProjectId.eq(project.id.clone()))
            .all(&self.conn)
            .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.user_id.clone()).collect();
        let found = users(
            user::Entity::find()
                .filter(user::Column::Id.is_in(ids))
                .all(&self.conn)
                .await?,
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(u) = found.iter().find(|u| u.id == row.user_id) {
                out.push(MemberRow {
                    user: u.clone(),
                    role: ProjectRole::parse(&row.project_role).map_err(corrupt)?,
                });
            }
        }
        Ok(out)
    }

    /// The role of a user in a project, if a member.
    pub async fn member_role(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<ProjectRole>> {
        member::Entity::find_by_id((project_id.to_string(), user_id.to_string()))
            .one(&self.conn)
            .await?
            .map(|m| ProjectRole::parse(&m.project_role).map_err(corrupt))
            .transpose()
    }

    /// Replaces a project's members (set) or adds and re-roles some (add), in one transaction.
    pub async fn write_members(
        &self,
        project: &project::Model,
        members: &[(UserRow, ProjectRole)],
        replace_all: bool,
    ) -> Result<()> {
        let txn = self.conn.begin().await?;
        if replace_all {
            member::Entity::delete_many()
                .filter(member::Column::ProjectId.eq(project.id.clone()))
                .exec(&txn)
                .await?;
        }
        for (user, role) in members {
            member::Entity::delete_by_id((project.id.clone(), user.id.clone()))
                .exec(&txn)
                .await?;
            member::ActiveModel {
                project_id: Set(project.id.clone()),
                user_id: Set(user.id.clone()),
                project_role: Set(role.as_str().to_string()),
            }
            .insert(&txn)
            .await?;
        }
        txn.commit().await?;
        self.users_written();
        Ok(())
    }

    /// Removes members, in one transaction.
    pub async fn remove_members(&self, project: &project::Model, users: &[UserRow]) -> Result<()> {
        let txn = self.conn.begin().await?;
        for user in users {
            member::Entity::delete_by_id((project.id.clone(), user.id.clone()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        self.users_written();
        Ok(())
    }

    /// Every membership (project id, user id, role), for building lookups in one query.
    pub async fn all_memberships(&self) -> Result<Vec<(String, String, ProjectRole)>> {
        member::Entity::find()
            .all(&self.conn)
            .await?
            .into_iter()
            .map(|m| {
                Ok((
                    m.project_id,
                    m.user_id,
                    ProjectRole::parse(&m.project_role).map_err(corrupt)?,
                ))
            })
            .collect()
    }

    /// The ids of the projects a user is a member of.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(member::Entity::find()
            .filter(member::Column::UserId.eq(user_id))
            .all(&self.conn)
            .await?
            .into_iter()
            .map(|m| m.project_id)
            .collect())
    }
}
