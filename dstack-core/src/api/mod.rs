//! Wire types of the server's HTTP API, shaped as the original's so its CLI can drive us.
//! Only these types (and configurations) are serialised for clients.

pub mod events;
pub mod fleets;
pub mod gpus;
pub mod runs;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// The API version we speak: clients of this version (and older, or newer patches) are served.
pub const API_VERSION: &str = "0.22.5";

/// Timestamps as the original writes them: microseconds and `Z`.
pub fn serialize_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// Optional timestamps as the original writes them.
pub fn serialize_opt_time<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize_time(t, s),
        None => s.serialize_none(),
    }
}

/// `POST /api/server/get_info`
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// The API version served.
    pub server_version: String,
}

/// `User.permissions`
#[derive(Debug, Clone, Serialize)]
pub struct UserPermissions {
    /// Whether the user may create projects.
    pub can_create_projects: bool,
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Id (UUID).
    pub id: String,
    /// Name.
    pub username: String,
    /// Creation time.
    #[serde(serialize_with = "serialize_time")]
    pub created_at: DateTime<Utc>,
    /// `admin` or `user`.
    pub global_role: String,
    /// E-mail.
    pub email: Option<String>,
    /// Whether the user may log in.
    pub active: bool,
    /// Permissions.
    pub permissions: UserPermissions,
    /// The server-generated SSH public key (not generated yet).
    pub ssh_public_key: Option<String>,
}

/// `UserTokenCreds`
#[derive(Debug, Clone, Serialize)]
pub struct UserTokenCreds {
    /// The token.
    pub token: String,
}

/// A user with credentials (`users/get_my_user`).
#[derive(Debug, Clone, Serialize)]
pub struct UserWithCreds {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// Their token.
    pub creds: UserTokenCreds,
    /// The server-generated SSH private key (not generated yet).
    pub ssh_private_key: Option<String>,
}

/// `Member.permissions`
#[derive(Debug, Clone, Serialize)]
pub struct MemberPermissions {
    /// May manage SSH fleets.
    pub can_manage_ssh_fleets: bool,
    /// May manage secrets.
    pub can_manage_secrets: bool,
}

/// A project member.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// The user.
    pub user: User,
    /// `admin`, `manager` or `user`.
    pub project_role: String,
    /// What the role allows.
    pub permissions: MemberPermissions,
}

/// A configured backend of a project.
#[derive(Debug, Clone, Serialize)]
pub struct BackendInfo {
    /// Backend type.
    pub name: String,
    /// Its configuration.
    pub config: serde_json::Value,
}

/// A project.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    /// Id (UUID).
    pub project_id: String,
    /// Name.
    pub project_name: String,
    /// Owner.
    pub owner: User,
    /// Creation time.
    #[serde(serialize_with = "serialize_time")]
    pub created_at: DateTime<Utc>,
    /// Configured backends.
    pub backends: Vec<BackendInfo>,
    /// Members.
    pub members: Vec<Member>,
    /// Whether anyone may join.
    pub is_public: bool,
    /// Templates repository.
    pub templates_repo: Option<String>,
}

/// `POST /api/projects/create`
#[derive(Debug, Clone, Deserialize)]
pub struct CreateProjectRequest {
    /// Name.
    pub project_name: String,
    /// Public.
    #[serde(default)]
    pub is_public: bool,
}

/// `POST /api/users/create`
#[derive(Debug, Clone, Deserialize)]
pub struct CreateUserRequest {
    /// Name.
    pub username: String,
    /// `admin` or `user`.
    pub global_role: String,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
}

/// `username` + `project_role`.
#[derive(Debug, Clone, Deserialize)]
pub struct MemberSetting {
    /// The user.
    pub username: String,
    /// The role.
    pub project_role: String,
}

/// `POST /api/projects/{p}/set_members` and `add_members`.
#[derive(Debug, Clone, Deserialize)]
pub struct MembersRequest {
    /// The members.
    pub members: Vec<MemberSetting>,
}

/// `POST /api/projects/{p}/remove_members`
#[derive(Debug, Clone, Deserialize)]
pub struct RemoveMembersRequest {
    /// The users to remove.
    pub usernames: Vec<String>,
}

/// `POST /api/users/get_user`
#[derive(Debug, Clone, Deserialize)]
pub struct GetUserRequest {
    /// The user.
    pub username: String,
}

/// Permissions of a project role.
pub fn member_permissions(role: &str) -> MemberPermissions {
    let manager = matches!(role, "admin" | "manager");
    MemberPermissions {
        can_manage_ssh_fleets: manager,
        can_manage_secrets: manager,
    }
}
