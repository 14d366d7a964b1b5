//! dstack's control plane as a library.
//!
//! This crate holds the pure core of dstack in Rust: the `.dstack.yml` language
//! ([`config`]), resource requirements and their shorthand ([`resources`]), cron schedules
//! ([`schedule`]), matching requirements against offers ([`offers`]) and the rules the server
//! applies to a submitted run ([`spec`]). Nothing here does I/O, reads the clock or the
//! environment; the server, backends and proxy build on top of it.
//!
//! ```
//! let text = "type: service\nport: 8000\ncommands: [python -m http.server 8000]\n";
//! let config = dstack_core::config::parse_str("service.dstack.yml", text)?;
//! assert_eq!(config.type_name(), "service");
//! # Ok::<(), dstack_core::config::ConfigError>(())
//! ```

pub mod auth;
pub mod config;
pub mod jobspec;
pub mod lifecycle;
pub mod offers;
pub mod resources;
pub mod schedule;
pub mod spec;

#[cfg(feature = "server")]
pub mod api;
#[cfg(feature = "server")]
pub mod backends;
#[cfg(feature = "server")]
pub mod proxy;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod state;
