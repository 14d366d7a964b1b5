//! The route table on the request path: the indexed [`Table`] behind an [`ArcSwap`], swapped
//! whole by [`Routes::replace`], and the per-service counters that outlive a swap.
//!
//! Replicas whose address is the server's own (the proxy's listener or the internal API
//! listener) are left out of the indexed table with a warning: the proxy would send itself the
//! request, again and again. The service then answers 502.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
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
    /// The route, without replicas that point at the server itself.
    pub(super) route: ServiceRoute,
    pub(super) counters: Arc<Counters>,
    /// Some replicas were left out because their address is the server's own.
    pub(super) refused_replicas: bool,
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

/// What [`Routes::replace`] keeps between calls.
#[derive(Debug, Default)]
struct Building {
    counters: HashMap<(String, String), Arc<Counters>>,
    /// The table as last given (replicas not filtered), rebuilt when a listener is added.
    last: RouteTable,
    /// The proxy's listeners.
    own: Vec<SocketAddr>,
    /// Refused replicas already warned about.
    refused: HashSet<(String, String, SocketAddr)>,
}

#[derive(Debug)]
pub(super) struct RoutesInner {
    pub(super) api: SocketAddr,
    /// This proxy's id in the loop-detection header (random per table).
    pub(super) hop_id: String,
    /// API requests in flight through the proxy at once; the others wait for a permit, so a
    /// burst of large answers (`runs/list`) does not hold a body buffer per caller.
    pub(super) api_permits: Arc<tokio::sync::Semaphore>,
    pub(super) table: ArcSwap<Table>,
    building: Mutex<Building>,
}

/// Shared, atomically replaceable route table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Routes(pub(super) Arc<RoutesInner>);

impl Routes {
    /// Creates an empty route table; non-`/proxy/` requests go to `api`.
    pub fn new(api: SocketAddr) -> Routes {
        Routes(Arc::new(RoutesInner {
            api,
            hop_id: uuid::Uuid::new_v4().simple().to_string(),
            api_permits: Arc::new(tokio::sync::Semaphore::new(API_CONCURRENCY)),
            table: ArcSwap::from_pointee(Table::default()),
            building: Mutex::new(Building::default()),
        }))
    }

    /// Replaces the whole route table atomically.
    ///
    /// Request counters and round-robin positions of services that stay in the table are kept;
    /// those of removed services are dropped. Replicas at the server's own addresses are left
    /// out (with a warning the first time).
    pub fn replace(&self, table: RouteTable) {
        let mut building = self
            .0
            .building
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        building.last = table;
        self.rebuild(&mut building);
    }

    /// Registers a listener of the proxy: replicas at this address are refused from now on,
    /// also in the current table.
    pub(super) fn add_own_listener(&self, addr: SocketAddr) {
        let mut building = self
            .0
            .building
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !building.own.contains(&addr) {
            building.own.push(addr);
            self.rebuild(&mut building);
        }
    }

    fn rebuild(&self, building: &mut Building) {
        let Building {
            counters,
            last,
            own,
            refused,
        } = building;
        let mut kept = HashMap::with_capacity(last.services.len());
        let mut refused_now = HashSet::new();
        let mut indexed = Table {
            tokens: last.tokens.clone(),
            ..Table::default()
        };
        for route in &last.services {
            let key = (route.project.clone(), route.run.clone());
            let entry_counters = counters.remove(&key).unwrap_or_default();
            kept.insert(key, Arc::clone(&entry_counters));
            let mut route = route.clone();
            let before = route.replicas.len();
            route.replicas.retain(|replica| {
                let own_addr = reaches(self.0.api, replica.addr)
                    || own.iter().any(|&listener| reaches(listener, replica.addr));
                if own_addr {
                    let key = (route.project.clone(), route.run.clone(), replica.addr);
                    if !refused.contains(&key) {
                        tracing::warn!(
                            project = %route.project,
                            run = %route.run,
                            replica = %replica.addr,
                            "a replica's address is the dstack server's own; the proxy will \
                             not forward to it"
                        );
                    }
                    refused_now.insert(key);
                }
                !own_addr
            });
            let entry = Arc::new(ServiceEntry {
                refused_replicas: route.replicas.len() < before,
                route,
                counters: entry_counters,
            });
            let routable = !entry.route.replicas.is_empty() || entry.refused_replicas;
            if let Some(model) = entry.route.model.as_ref().filter(|_| routable) {
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
        *refused = refused_now;
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

/// Whether a connection to `target` would reach `listener` (a socket of this host). A listener
/// on a wildcard address is also reached through a loopback address; a target on a wildcard
/// address reaches this host. Other addresses of the host are not recognised here: the
/// loop-detection header catches a replica that forwards to one of them.
fn reaches(listener: SocketAddr, target: SocketAddr) -> bool {
    if listener.port() != target.port() {
        return false;
    }
    let (l, t) = (listener.ip().to_canonical(), target.ip().to_canonical());
    let same_family = matches!(
        (l, t),
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
    );
    // A `[::]` listener accepts IPv4 too (unless the host says otherwise).
    let wildcard_covers = l.is_unspecified() && (same_family || l.is_ipv6());
    l == t || t.is_unspecified() || (wildcard_covers && t.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::reaches;

    #[test]
    fn own_addresses() {
        let at = |s: &str| s.parse().unwrap();
        assert!(reaches(at("127.0.0.1:3000"), at("127.0.0.1:3000")));
        assert!(!reaches(at("127.0.0.1:3000"), at("127.0.0.1:3001")));
        assert!(!reaches(at("127.0.0.1:3000"), at("127.0.0.2:3000")));
        assert!(reaches(at("127.0.0.1:3000"), at("0.0.0.0:3000")));
        assert!(reaches(at("0.0.0.0:3000"), at("127.0.0.5:3000")));
        assert!(reaches(at("0.0.0.0:3000"), at("[::ffff:127.0.0.1]:3000")));
        assert!(reaches(at("[::]:3000"), at("127.0.0.1:3000")));
        assert!(reaches(at("[::]:3000"), at("[::1]:3000")));
        assert!(!reaches(at("0.0.0.0:3000"), at("[::1]:3000")));
        assert!(!reaches(at("0.0.0.0:3000"), at("10.1.2.3:3000")));
        assert!(!reaches(at("10.1.2.3:3000"), at("127.0.0.1:3000")));
    }
}
