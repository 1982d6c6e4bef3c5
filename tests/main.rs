//! seashell's integration tests: one binary, a module per area, shared helpers in `common`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers and tests: a failed expectation is a failed test, reported with its message"
)]

mod channel;
mod common;
mod keys;
mod proto;
mod transfer;
