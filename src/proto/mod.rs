//! The seashell protocol, pure: no I/O, no clock of its own, no tokio.
