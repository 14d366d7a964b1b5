//! dstack
fn main() {}
