//! Criterion benches for the secure channel.
fn main() {}
