//! What each job of the local fleet holds on the host: GPUs, given out exclusively, and the
//! host ports its own ports are reached at.
//!
//! A job with a network of its own (see [`super::network`]) listens in its namespace and is
//! reached at a host port picked for it, so any number of jobs may use the same port. A job on
//! the host's network holds its ports themselves, one job at a time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::network::Forward;

/// What a job holds on the host (`alloc.json` in its directory).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Allocation {
    pub(super) gpus: Vec<u32>,
    /// The job's ports.
    pub(super) ports: Vec<u16>,
    /// Where each of `ports` is reached on the host's `127.0.0.1` (the same port on the host's
    /// network). Empty in allocations recorded before jobs had namespaces: the ports themselves.
    #[serde(default)]
    pub(super) host_ports: Vec<u16>,
}

impl Allocation {
    /// `(job port, host port)` pairs.
    pub(super) fn forwards(&self) -> Vec<Forward> {
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| Forward {
                job: *p,
                host: self.host_ports.get(i).copied().unwrap_or(*p),
            })
            .collect()
    }
}

/// Why a job cannot have what it asks for now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum AllocError {
    #[error("port {0} is held by another job")]
    PortHeld(u16),
    #[error("{wanted} GPUs wanted, {free} free")]
    Gpus { wanted: usize, free: usize },
    #[error("no free port on the host: {0}")]
    NoPort(String),
}

/// Who holds what.
#[derive(Debug, Default)]
pub(super) struct Held {
    gpus: HashMap<u32, String>,
    /// Host ports.
    ports: HashMap<u16, String>,
}

impl Held {
    pub(super) fn take(&mut self, job_id: &str, a: &Allocation) {
        for g in &a.gpus {
            self.gpus.insert(*g, job_id.to_string());
        }
        for f in a.forwards() {
            self.ports.insert(f.host, job_id.to_string());
        }
    }

    pub(super) fn free(&mut self, job_id: &str) {
        self.gpus.retain(|_, j| j != job_id);
        self.ports.retain(|_, j| j != job_id);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.gpus.is_empty() && self.ports.is_empty()
    }

    /// Picks `gpus` of the host's `host_gpus` and the host ports for `ports` from those nobody
    /// holds, and holds them for `job_id`. `pick_port` gives a free host port (for jobs with a
    /// namespace of their own); without it a job's ports are the host's.
    pub(super) fn reserve(
        &mut self,
        job_id: &str,
        ports: Vec<u16>,
        gpus: usize,
        host_gpus: u32,
        pick_port: Option<&dyn Fn() -> std::io::Result<u16>>,
    ) -> Result<Allocation, AllocError> {
        let host_ports = match pick_port {
            None => {
                if let Some(p) = ports
                    .iter()
                    .find(|p| self.ports.get(p).is_some_and(|j| j != job_id))
                {
                    return Err(AllocError::PortHeld(*p));
                }
                ports.clone()
            }
            Some(pick) => {
                let mut picked: Vec<u16> = Vec::new();
                for _ in &ports {
                    // A port the OS calls free may still be promised to a job whose `pasta`
                    // has not bound it yet.
                    let port = (0..64)
                        .map(|_| pick())
                        .find(|p| {
                            p.as_ref().map_or(true, |p| {
                                !self.ports.contains_key(p) && !picked.contains(p)
                            })
                        })
                        .unwrap_or_else(|| Err(std::io::Error::other("all taken")))
                        .map_err(|e| AllocError::NoPort(e.to_string()))?;
                    picked.push(port);
                }
                picked
            }
        };
        let free: Vec<u32> = (0..host_gpus)
            .filter(|g| self.gpus.get(g).is_none_or(|j| j == job_id))
            .take(gpus)
            .collect();
        if free.len() < gpus {
            return Err(AllocError::Gpus {
                wanted: gpus,
                free: free.len(),
            });
        }
        let a = Allocation {
            gpus: free,
            ports,
            host_ports,
        };
        self.take(job_id, &a);
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_the_host_network_a_port_is_one_jobs() {
        let mut held = Held::default();
        let a = held.reserve("a", vec![8000], 0, 0, None).unwrap();
        assert_eq!(
            a.forwards(),
            vec![Forward {
                job: 8000,
                host: 8000
            }]
        );
        assert_eq!(
            held.reserve("b", vec![8000], 0, 0, None),
            Err(AllocError::PortHeld(8000))
        );
        held.free("a");
        assert!(held.reserve("b", vec![8000], 0, 0, None).is_ok());
    }

    #[test]
    fn with_namespaces_jobs_share_a_port_at_different_host_ports() {
        let mut held = Held::default();
        let next = std::cell::Cell::new(40000u16);
        // The OS offers the same port twice: the second job must not get it.
        let pick = || -> std::io::Result<u16> {
            let p = next.get();
            if p < 40002 {
                next.set(p + 1);
                Ok(40000)
            } else {
                next.set(p + 1);
                Ok(p)
            }
        };
        let a = held.reserve("a", vec![8000], 0, 0, Some(&pick)).unwrap();
        let b = held.reserve("b", vec![8000], 0, 0, Some(&pick)).unwrap();
        assert_eq!(
            a.forwards()[0],
            Forward {
                job: 8000,
                host: 40000
            }
        );
        assert_eq!(b.forwards()[0].job, 8000);
        assert_ne!(b.forwards()[0].host, 40000);
    }

    #[test]
    fn gpus_are_given_out_once() {
        let mut held = Held::default();
        assert_eq!(held.reserve("a", vec![], 1, 2, None).unwrap().gpus, vec![0]);
        assert_eq!(held.reserve("b", vec![], 1, 2, None).unwrap().gpus, vec![1]);
        assert_eq!(
            held.reserve("c", vec![], 1, 2, None),
            Err(AllocError::Gpus { wanted: 1, free: 0 })
        );
    }

    #[test]
    fn allocations_from_before_namespaces_read_as_host_ports() {
        let a: Allocation = serde_json::from_str(r#"{"gpus":[],"ports":[8000]}"#).unwrap();
        assert_eq!(
            a.forwards(),
            vec![Forward {
                job: 8000,
                host: 8000
            }]
        );
    }
}
