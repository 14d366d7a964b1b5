//! Where jobs run. For now the local fleet only: the host the server runs on.

pub mod local;
