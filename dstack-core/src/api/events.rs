//! Events (`POST /api/events/list`, what `dstack event` shows), shaped as the original's
//! `ListEventsRequest` and `Event`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::serialize_time;

/// The most items a filter list may have (`MAX_FILTER_ITEMS`).
pub const MAX_FILTER_ITEMS: usize = 16;
/// The largest page (`limit`), also the default.
pub const MAX_EVENTS_PAGE: u64 = 100;

/// The target types of events (`EventTargetType`).
pub const TARGET_TYPES: &[&str] = &[
    "project",
    "user",
    "fleet",
    "instance",
    "run",
    "job",
    "volume",
    "gateway",
    "gateway-replica",
    "secret",
    "preset",
];

fn default_limit() -> u64 {
    MAX_EVENTS_PAGE
}

/// `ListEventsRequest`. Ids are kept as sent; they are compared, never parsed.
#[derive(Debug, Clone, Deserialize)]
pub struct ListEventsRequest {
    /// Events about these projects.
    #[serde(default)]
    pub target_projects: Option<Vec<String>>,
    /// Events about these users.
    #[serde(default)]
    pub target_users: Option<Vec<String>>,
    /// Events about these fleets.
    #[serde(default)]
    pub target_fleets: Option<Vec<String>>,
    /// Events about these instances.
    #[serde(default)]
    pub target_instances: Option<Vec<String>>,
    /// Events about these runs.
    #[serde(default)]
    pub target_runs: Option<Vec<String>>,
    /// Events about these jobs.
    #[serde(default)]
    pub target_jobs: Option<Vec<String>>,
    /// Events about these volumes.
    #[serde(default)]
    pub target_volumes: Option<Vec<String>>,
    /// Events about these gateways.
    #[serde(default)]
    pub target_gateways: Option<Vec<String>>,
    /// Events about these gateway replicas.
    #[serde(default)]
    pub target_gateway_replicas: Option<Vec<String>>,
    /// Events about these secrets.
    #[serde(default)]
    pub target_secrets: Option<Vec<String>>,
    /// Events about these presets.
    #[serde(default)]
    pub target_presets: Option<Vec<String>>,
    /// Events about these projects or anything in them.
    #[serde(default)]
    pub within_projects: Option<Vec<String>>,
    /// Events about these fleets or their instances.
    #[serde(default)]
    pub within_fleets: Option<Vec<String>>,
    /// Events about these runs or their jobs.
    #[serde(default)]
    pub within_runs: Option<Vec<String>>,
    /// Events about these gateways or their replicas.
    #[serde(default)]
    pub within_gateways: Option<Vec<String>>,
    /// Only events about targets of these types.
    #[serde(default)]
    pub include_target_types: Option<Vec<String>>,
    /// Only events by these users (`null`: by the server itself).
    #[serde(default)]
    pub actors: Option<Vec<Option<String>>>,
    /// Paging: `recorded_at` of the last event of the previous page.
    #[serde(default)]
    pub prev_recorded_at: Option<DateTime<Utc>>,
    /// Paging: `id` of the last event of the previous page.
    #[serde(default)]
    pub prev_id: Option<String>,
    /// Page size, 1..=100.
    #[serde(default = "default_limit")]
    pub limit: u64,
    /// Oldest first.
    #[serde(default)]
    pub ascending: bool,
}

impl Default for ListEventsRequest {
    fn default() -> ListEventsRequest {
        ListEventsRequest {
            target_projects: None,
            target_users: None,
            target_fleets: None,
            target_instances: None,
            target_runs: None,
            target_jobs: None,
            target_volumes: None,
            target_gateways: None,
            target_gateway_replicas: None,
            target_secrets: None,
            target_presets: None,
            within_projects: None,
            within_fleets: None,
            within_runs: None,
            within_gateways: None,
            include_target_types: None,
            actors: None,
            prev_recorded_at: None,
            prev_id: None,
            limit: default_limit(),
            ascending: false,
        }
    }
}

impl ListEventsRequest {
    /// The `target_*` filters with their target types, set or not.
    pub fn target_filters(&self) -> [(&'static str, &'static str, Option<&Vec<String>>); 11] {
        [
            ("target_projects", "project", self.target_projects.as_ref()),
            ("target_users", "user", self.target_users.as_ref()),
            ("target_fleets", "fleet", self.target_fleets.as_ref()),
            (
                "target_instances",
                "instance",
                self.target_instances.as_ref(),
            ),
            ("target_runs", "run", self.target_runs.as_ref()),
            ("target_jobs", "job", self.target_jobs.as_ref()),
            ("target_volumes", "volume", self.target_volumes.as_ref()),
            ("target_gateways", "gateway", self.target_gateways.as_ref()),
            (
                "target_gateway_replicas",
                "gateway-replica",
                self.target_gateway_replicas.as_ref(),
            ),
            ("target_secrets", "secret", self.target_secrets.as_ref()),
            ("target_presets", "preset", self.target_presets.as_ref()),
        ]
    }

    /// The `within_*` filters, set or not.
    pub fn within_filters(&self) -> [(&'static str, Option<&Vec<String>>); 4] {
        [
            ("within_projects", self.within_projects.as_ref()),
            ("within_fleets", self.within_fleets.as_ref()),
            ("within_runs", self.within_runs.as_ref()),
            ("within_gateways", self.within_gateways.as_ref()),
        ]
    }

    /// The original's request rules: list sizes, the page size, known target types, at most
    /// one `target_*` and one `within_*` filter. The message says which rule failed.
    pub fn validate(&self) -> Result<(), String> {
        let mut lists: Vec<(&str, usize)> = Vec::new();
        for (name, _, list) in self.target_filters() {
            lists.extend(list.map(|l| (name, l.len())));
        }
        for (name, list) in self.within_filters() {
            lists.extend(list.map(|l| (name, l.len())));
        }
        lists.extend(
            self.include_target_types
                .as_ref()
                .map(|l| ("include_target_types", l.len())),
        );
        lists.extend(self.actors.as_ref().map(|l| ("actors", l.len())));
        for (name, len) in lists {
            if len < 1 {
                return Err(format!(
                    "{name}: List should have at least 1 item after validation, not 0"
                ));
            }
            if len > MAX_FILTER_ITEMS {
                return Err(format!(
                    "{name}: List should have at most {MAX_FILTER_ITEMS} items after validation, not {len}"
                ));
            }
        }
        if !(1..=MAX_EVENTS_PAGE).contains(&self.limit) {
            return Err(format!(
                "limit: Input should be between 1 and {MAX_EVENTS_PAGE}, got {}",
                self.limit
            ));
        }
        for t in self.include_target_types.iter().flatten() {
            if !TARGET_TYPES.contains(&t.as_str()) {
                return Err(format!(
                    "include_target_types: Input should be one of {}, got {t:?}",
                    TARGET_TYPES.join(", ")
                ));
            }
        }
        let targets: Vec<&str> = self
            .target_filters()
            .iter()
            .filter(|(_, _, l)| l.is_some())
            .map(|(name, _, _)| *name)
            .collect();
        if targets.len() > 1 {
            return Err(format!(
                "Value error, At most one target_* filter can be set at a time. Got {}",
                targets.join(", ")
            ));
        }
        let within: Vec<&str> = self
            .within_filters()
            .iter()
            .filter(|(_, l)| l.is_some())
            .map(|(name, _)| *name)
            .collect();
        if within.len() > 1 {
            return Err(format!(
                "Value error, At most one within_* filter can be set at a time. Got {}",
                within.join(", ")
            ));
        }
        Ok(())
    }
}

/// `EventTarget`: what an event is about.
#[derive(Debug, Clone, Serialize)]
pub struct EventTarget {
    /// Target type (`run`, `job`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The project of the target.
    pub project_id: Option<String>,
    /// Its name.
    pub project_name: Option<String>,
    /// Whether the project is deleted.
    pub is_project_deleted: Option<bool>,
    /// The target's id.
    pub id: String,
    /// The target's name.
    pub name: String,
}

/// `Event`
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Id.
    pub id: String,
    /// What happened, in the original's words.
    pub message: String,
    /// When.
    #[serde(serialize_with = "serialize_time")]
    pub recorded_at: DateTime<Utc>,
    /// The user who did it (`null`: the server).
    pub actor_user_id: Option<String>,
    /// Their name.
    pub actor_user: Option<String>,
    /// Whether that user is deleted.
    pub is_actor_user_deleted: Option<bool>,
    /// What it is about.
    pub targets: Vec<EventTarget>,
}

#[cfg(test)]
mod tests {
    use super::ListEventsRequest;

    fn req(v: serde_json::Value) -> ListEventsRequest {
        serde_json::from_value(v).expect("a request")
    }

    #[test]
    fn rules() {
        assert!(req(serde_json::json!({})).validate().is_ok());
        let two = req(serde_json::json!({"target_runs": ["a"], "target_jobs": ["b"]}));
        assert_eq!(
            two.validate().err().as_deref(),
            Some(
                "Value error, At most one target_* filter can be set at a time. Got target_runs, target_jobs"
            )
        );
        let within = req(serde_json::json!({"within_runs": ["a"], "within_projects": ["b"]}));
        assert!(within.validate().is_err());
        assert!(req(serde_json::json!({"limit": 0})).validate().is_err());
        assert!(req(serde_json::json!({"limit": 101})).validate().is_err());
        assert!(
            req(serde_json::json!({"within_projects": []}))
                .validate()
                .is_err()
        );
        assert!(
            req(serde_json::json!({"include_target_types": ["nope"]}))
                .validate()
                .is_err()
        );
        assert!(
            req(serde_json::json!({"actors": [null], "target_runs": ["a"], "within_projects": ["p"]}))
                .validate()
                .is_ok()
        );
    }
}
