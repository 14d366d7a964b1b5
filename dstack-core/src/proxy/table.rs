//! The route table on the request path: the indexed [`Table`] behind an [`ArcSwap`], swapped
//! whole by [`Routes::replace`], and the per-service counters that outlive a swap.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use pingora::http::RequestHeader;

use super::request::bearer_token;
use super::{RouteTable, ServiceRoute, TokenInfo};

/// API requests proxied at once (see `RoutesInner::api_permits`).
const API_CONCURRENCY: usize = 32;

/// Counters of one service that survive table replacements.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Requests that resolved to the service.
    pub(super) requests: AtomicU64,
    /// Round-robin position.
    pub(super) next_replica: AtomicUsize,
}

/// A service in the indexed table.
#[derive(Debug)]
pub(super) struct ServiceEntry {
    pub(super) route: ServiceRoute,
    pub(super) counters: Arc<Counters>,
}

/// The indexed route table used on the request path.
#[derive(Debug, Default)]
pub(super) struct Table {
    /// project -> run -> service.
    services: HashMap<String, HashMap<String, Arc<ServiceEntry>>>,
    /// project -> model name -> service (only services with replicas).
    pub(super) models: HashMap<String, HashMap<String, Arc<ServiceEntry>>>,
    /// By the token's SHA-256 (hex), as `RouteTable::tokens`.
    tokens: HashMap<String, TokenInfo>,
}

impl Table {
    pub(super) fn service(&self, project: &str, run: &str) -> Option<&Arc<ServiceEntry>> {
        self.services.get(project)?.get(run)
    }

    pub(super) fn authorized(&self, req: &RequestHeader, project: &str) -> bool {
        let Some(token) = bearer_token(req) else {
            return false;
        };
        self.tokens
            .get(&crate::state::token_hash(token))
            .is_some_and(|t| t.global_admin || t.projects.contains(project))
    }
}

#[derive(Debug)]
pub(super) struct RoutesInner {
    pub(super) api: SocketAddr,
    /// API requests in flight through the proxy at once; the others wait for a permit, so a
    /// burst of large answers (`runs/list`) does not hold a body buffer per caller.
    pub(super) api_permits: Arc<tokio::sync::Semaphore>,
    pub(super) table: ArcSwap<Table>,
    counters: Mutex<HashMap<(String, String), Arc<Counters>>>,
}

/// Shared, atomically replaceable route table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Routes(pub(super) Arc<RoutesInner>);

impl Routes {
    /// Creates an empty route table; non-`/proxy/` requests go to `api`.
    pub fn new(api: SocketAddr) -> Routes {
        Routes(Arc::new(RoutesInner {
            api,
            api_permits: Arc::new(tokio::sync::Semaphore::new(API_CONCURRENCY)),
            table: ArcSwap::from_pointee(Table::default()),
            counters: Mutex::new(HashMap::new()),
        }))
    }

    /// Replaces the whole route table atomically.
    ///
    /// Request counters and round-robin positions of services that stay in the table are kept;
    /// those of removed services are dropped.
    pub fn replace(&self, table: RouteTable) {
        let mut counters = self
            .0
            .counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut kept = HashMap::with_capacity(table.services.len());
        let mut indexed = Table {
            tokens: table.tokens,
            ..Table::default()
        };
        for route in table.services {
            let key = (route.project.clone(), route.run.clone());
            let entry_counters = counters.remove(&key).unwrap_or_default();
            kept.insert(key, Arc::clone(&entry_counters));
            let entry = Arc::new(ServiceEntry {
                route,
                counters: entry_counters,
            });
            if let Some(model) = entry
                .route
                .model
                .as_ref()
                .filter(|_| !entry.route.replicas.is_empty())
            {
                indexed
                    .models
                    .entry(entry.route.project.clone())
                    .or_default()
                    .insert(model.name.clone(), Arc::clone(&entry));
            }
            indexed
                .services
                .entry(entry.route.project.clone())
                .or_default()
                .insert(entry.route.run.clone(), entry);
        }
        *counters = kept;
        self.0.table.store(Arc::new(indexed));
    }

    /// Number of requests addressed to service `project/run` (including ones rejected with
    /// 403 or 413) since it appeared in the table; a seam for autoscaling statistics. Returns 0
    /// for services not in the table.
    pub fn request_count(&self, project: &str, run: &str) -> u64 {
        let table = self.0.table.load();
        table
            .service(project, run)
            .map_or(0, |e| e.counters.requests.load(Ordering::Relaxed))
    }
}
