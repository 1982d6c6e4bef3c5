//! seashell's integration tests: one binary, a module per area, shared helpers in `common`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers and tests: a failed expectation is a failed test, reported with its message"
)]

mod audit;
mod channel;
mod common;
mod console;
mod fuzz;
mod keys;
mod policy;
mod proto;
mod session;
mod transfer;
mod vectors;
