//! The command-line interface: clap definitions of every subcommand and its flags. Parsing
//! only; `main.rs` hands the parsed values to the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// seashell: an encrypted remote console for LANs.
#[derive(Debug, Parser)]
#[command(name = "seashell", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every seashell subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make an RSA key pair (private PKCS#8 PEM and a one-line .pub).
    Keygen(KeygenArgs),
    /// Print the SHA256 fingerprint of a key file, or of every key in an
    /// authorized_keys / known_hosts file.
    Fingerprint(FingerprintArgs),
}

/// `seashell keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Private key path (the public key goes to PATH.pub). Default: $SEASHELL_HOME/id_rsa.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Modulus size in bits.
    #[arg(short = 'b', long = "bits", default_value_t = 3072, value_parser = parse_bits)]
    pub bits: usize,
    /// Comment stored in the .pub line. Default: user@hostname.
    #[arg(short = 'C', long = "comment")]
    pub comment: Option<String>,
    /// Read the passphrase from the first line of FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "no_passphrase")]
    pub passphrase_file: Option<PathBuf>,
    /// Write the private key unencrypted, without asking.
    #[arg(long)]
    pub no_passphrase: bool,
    /// Overwrite existing key files.
    #[arg(long)]
    pub force: bool,
}

/// `seashell fingerprint`.
#[derive(Debug, Args)]
pub struct FingerprintArgs {
    /// A private key, a .pub file, an authorized_keys or a known_hosts file.
    pub file: PathBuf,
    /// Passphrase file for an encrypted private key.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// Accepts exactly the RSA sizes keygen makes: 2048, 3072 or 4096 bits.
fn parse_bits(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(bits @ (2048 | 3072 | 4096)) => Ok(bits),
        Ok(bits) if bits < 2048 => Err(format!(
            "{bits}-bit RSA keys are too weak: use 2048, 3072 (default) or 4096"
        )),
        _ => Err("use 2048, 3072 (default) or 4096".to_owned()),
    }
}
