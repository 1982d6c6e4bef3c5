//! The `keygen` and `fingerprint` subcommands.

use crate::cli::{FingerprintArgs, KeygenArgs};

/// Runs `seashell keygen`.
pub fn run(_args: &KeygenArgs) -> Result<(), std::io::Error> {
    Err(std::io::Error::other("not yet"))
}

/// Runs `seashell fingerprint`.
pub fn fingerprint(_args: &FingerprintArgs) -> Result<(), std::io::Error> {
    Err(std::io::Error::other("not yet"))
}
