//! Shared value grammars: durations, `env`, ports, mount points, `files`, `repos`, users, tags,
//! entity references and registry credentials.

mod durations;
mod env;
mod identity;
mod mounts;
mod ports;
mod repos;

pub use durations::*;
pub use env::*;
pub use identity::*;
pub use mounts::*;
pub use ports::*;
pub use repos::*;
