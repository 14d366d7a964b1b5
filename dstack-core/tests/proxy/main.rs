#![cfg(feature = "server")]
//! End-to-end tests of the dstack proxy against real upstream servers on 127.0.0.1.
//!
//! `upstream` holds the servers the proxy forwards to, `support` the proxy harness; the tests
//! are grouped by topic.

mod hostile;
mod models;
mod services;
mod streaming;
mod support;
mod upstream;
