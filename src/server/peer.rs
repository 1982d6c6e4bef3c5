//! Who is on the other end of a session: the key's name and fingerprint (and certificate),
//! the session id,
//! the client's address and what the key may do. Built once, when authentication succeeds,
//! and only read after that; it holds no handle on anything (the audit log, the connection)
//! and does no I/O.

use super::policy::Policy;
use crate::audit::CertIdentity;

/// Who is on the other end, for `:session` and the logs.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The key's comment in authorized_keys, or its certificate's name.
    pub name: String,
    /// The certificate that admitted the key, if one did.
    pub cert: Option<CertIdentity>,
    /// The key's fingerprint.
    pub fingerprint: String,
    /// The session id, hex.
    pub session_id: String,
    /// The client's address.
    pub address: String,
    /// What the key may do (authorized_keys options).
    pub policy: Policy,
}
