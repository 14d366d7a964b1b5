//! One module per command.

pub(crate) mod apply;
pub(crate) mod project;
pub(crate) mod runs;
pub(crate) mod server;
pub(crate) mod validate;
