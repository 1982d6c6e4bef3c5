//! Key files: RSA key generation, private keys on disk (PKCS#8 PEM, optionally
//! passphrase-encrypted, created 0600 and refused when others can read them), public key
//! lines and fingerprints, and the two trust files: authorized_keys (server) and known_hosts
//! (client), certificates (a CA key's signature over a key, a name and a validity window;
//! `ca` issues them from files and reads them back), and the server's list of revoked keys
//! and certificates. Nothing here touches the network.

pub mod authorized;
pub mod ca;
pub mod cert;
pub mod cidr;
mod error;
mod files;
pub mod home;
pub mod keygen;
pub mod known_hosts;
pub mod private;
pub mod public;
pub mod revoked;
mod trust_file;

pub use error::{KeyError, LineProblem, LineWarning};
