//! seashell's integration tests: one binary, a module per area, shared helpers in `common`.

mod channel;
mod proto;
