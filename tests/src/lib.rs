//! End-to-end tests of dstack, in `tests/e2e/`: they start the real `dstack` binary
//! (`dstack server` on 127.0.0.1 with a temporary HOME) and talk to it over HTTP and through
//! the CLIs, never through the library. Build the binary first: `cargo build -p dstack-cli`
//! (or point `DSTACK_BIN` at one), then `cargo test -p dstack-tests`.
