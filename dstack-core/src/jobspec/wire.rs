//! The job spec's wire types, in the original's shape and field order.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DEFAULT_GROUP_NAME, LEGACY_REPO_DIR};
use crate::lifecycle::{JobPolicy, RetryPolicy};
use crate::resources::ResourcesSpec;

/// An uploaded file archive and where it goes (`FileArchiveMapping`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileArchiveMapping {
    /// The archive's id.
    pub id: String,
    /// Where to unpack it in the job's file system.
    pub path: String,
}

/// A port the CLI forwards when attached (`AppSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    /// The port in the job.
    pub port: u16,
    /// The local port to map it to.
    pub map_to_port: Option<u16>,
    /// Name.
    pub app_name: String,
    /// URL path to print.
    #[serde(default)]
    pub url_path: Option<String>,
    /// Query parameters to print.
    #[serde(default)]
    pub url_query_params: Option<Value>,
}

/// The requirements of one job (`Requirements`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirements {
    /// Resources.
    #[serde(deserialize_with = "de_resources")]
    pub resources: ResourcesSpec,
    /// Highest price per hour.
    pub max_price: Option<f64>,
    /// Spot only (`true`), on-demand only (`false`) or either.
    pub spot: Option<bool>,
    /// Capacity reservation.
    pub reservation: Option<String>,
    /// Several jobs per replica.
    pub multinode: Option<bool>,
    /// Backend options.
    pub backend_options: Option<Value>,
}

fn de_resources<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ResourcesSpec, D::Error> {
    let value = Value::deserialize(d)?;
    let node = crate::config::Node::from_json(&value);
    let mut cx = crate::config::decode::Cx::new();
    match crate::config::resources::resources(&mut cx, &node) {
        Ok(r) if !cx.has_issues() => Ok(r),
        _ => Err(serde::de::Error::custom("invalid resources in a job spec")),
    }
}

/// Environment variables in their order, serialised as a mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvVars(pub Vec<(String, String)>);

impl Serialize for EnvVars {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for EnvVars {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EnvVars, D::Error> {
        let map = serde_json::Map::<String, Value>::deserialize(d)?;
        Ok(EnvVars(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect(),
        ))
    }
}

/// What one job runs (`JobSpec`), in the original's wire shape and field order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Replica number.
    #[serde(default)]
    pub replica_num: i64,
    /// Job number within the replica.
    pub job_num: i64,
    /// `<run>-<job_num>-<replica_num>`.
    pub job_name: String,
    /// Jobs per replica.
    #[serde(default = "one")]
    pub jobs_per_replica: i64,
    /// The replica group.
    #[serde(default = "default_group")]
    pub replica_group: String,
    /// Ports to forward when attached.
    #[serde(default)]
    pub app_specs: Option<Vec<AppSpec>>,
    /// The Unix user.
    #[serde(default)]
    pub user: Option<Value>,
    /// The container command line.
    pub commands: Vec<String>,
    /// Environment (values may hold `${{ secrets.* }}` references).
    pub env: EnvVars,
    /// Home directory.
    #[serde(default)]
    pub home_dir: Option<String>,
    /// Image.
    pub image_name: String,
    /// Privileged container.
    #[serde(default)]
    pub privileged: bool,
    /// Clone only the current branch.
    #[serde(default)]
    pub single_branch: Option<bool>,
    /// The longest the job may run, seconds.
    #[serde(default)]
    pub max_duration: Option<i64>,
    /// Graceful stop time, seconds (`None`: no limit).
    #[serde(default)]
    pub stop_duration: Option<i64>,
    /// Utilisation policy.
    #[serde(default)]
    pub utilization_policy: Option<Value>,
    /// Registry credentials.
    #[serde(default)]
    pub registry_auth: Option<Value>,
    /// Requirements.
    pub requirements: Requirements,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// Volumes.
    #[serde(default)]
    pub volumes: Option<Vec<Value>>,
    /// The job's SSH key for inter-node communication.
    #[serde(default)]
    pub ssh_key: Option<Value>,
    /// Working directory (absolute), or the image's.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// Repo data.
    #[serde(default)]
    pub repo_data: Option<Value>,
    /// The uploaded code of a local repo.
    #[serde(default)]
    pub repo_code_hash: Option<String>,
    /// Where the repo goes.
    #[serde(default = "legacy_repo_dir")]
    pub repo_dir: String,
    /// What to do when the repo directory exists.
    #[serde(default)]
    pub repo_exists_action: Option<String>,
    /// Uploaded files.
    #[serde(default)]
    pub file_archives: Vec<FileArchiveMapping>,
    /// The service port.
    #[serde(default)]
    pub service_port: Option<u16>,
    /// Probes.
    #[serde(default)]
    pub probes: Vec<Value>,
    /// Node group index.
    #[serde(default)]
    pub node_group_index: i64,
    /// Node group name.
    #[serde(default = "default_group")]
    pub node_group_name: String,
    /// Index within the node group.
    #[serde(default)]
    pub node_group_job_index: i64,
}

fn one() -> i64 {
    1
}

fn default_group() -> String {
    DEFAULT_GROUP_NAME.into()
}

fn legacy_repo_dir() -> String {
    LEGACY_REPO_DIR.into()
}

impl JobSpec {
    /// The limits and retries the lifecycle applies.
    pub fn policy(&self) -> JobPolicy {
        JobPolicy {
            retry: self.retry.clone(),
            max_duration: self.max_duration,
            stop_duration: self.stop_duration,
        }
    }

    /// The minimum number of GPUs the job asks for.
    pub fn gpu_count(&self) -> u32 {
        self.requirements
            .resources
            .gpu
            .as_ref()
            .and_then(|g| g.count.min)
            .map_or(0, |n| n.max(0) as u32)
    }
}
