//! End-to-end tests across the binaries: `dstack server` as a real process (temporary HOME,
//! 127.0.0.1, port 0), driven over HTTP, by our `dstack` CLI and by the upstream CLI.
//! One test binary, so that it links once; each test starts its own server.
//!
//! The binary under test is `DSTACK_BIN`, or `dstack` in the target profile directory of this
//! test binary: build it first with `cargo build -p dstack-cli`.

mod util;

mod api_surface;
mod backend;
mod encryption;
mod limits;
mod logs;
mod network;
mod robustness;
mod runs;
mod sandbox;
mod security;
mod server_e2e;
mod unprivileged;
mod upstream_cli;
