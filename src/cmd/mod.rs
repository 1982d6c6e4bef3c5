//! The binary's command layer: each subcommand whose result is something to show gets a
//! function here that turns its parsed flags into library calls and prints what they return.
//! The library never prints on these commands' behalf; nothing here decides anything the
//! library could test on its own.

pub mod agent;
pub mod ca;
pub mod keys;
