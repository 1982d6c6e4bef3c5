//! seashell's integration tests: one binary, a module per area, shared helpers in `common`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers and tests: a failed expectation (or an index past what a test built) is a failed test, reported with its message"
)]

mod admission;
mod agent;
mod audit;
mod certs;
mod certs_cli;
mod channel;
mod common;
mod console;
mod corpus;
mod crypto;
mod fanout;
mod fuzz;
mod habits;
mod hostile_server;
mod hosts;
mod keys;
mod layers;
mod man;
mod policy;
mod proto;
mod providers;
mod session;
mod shell;
mod terminal;
mod transfer;
mod vectors;
