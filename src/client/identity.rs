//! Which key signs ClientAuth, and where it is: exactly one key per connection (the protocol
//! has one ClientAuth, and offering every key would show a server identities it was not
//! meant to see). With an agent (`SEASHELL_AUTH_SOCK`): the key named by `-i` or the config
//! when the agent holds it (known by the `.pub` beside it); else the default identity when
//! the agent holds it; else the agent's only key; else an error listing the agent's keys.
//! Without one, or when the agent holds no key or not the one named, the key file, as
//! before (a prompt on a terminal, else `--passphrase-file` or `SEASHELL_PASSPHRASE`).
//! Either way, a certificate of that key is presented with it — the config's `certificate`,
//! else the one beside its file (`PATH-cert.pub`), else, for an agent's key, the one the
//! agent holds with it — unless it is not valid now (then the key is offered alone, with a
//! warning: a server judges a presented certificate, never the key on its own).

use std::path::Path;

use crate::crypto::{PrivateKey, PublicKey};

use super::ClientError;
use super::connect::ConnectOptions;
use crate::agent::client::{Agent, AgentKey, AgentSigner};
use crate::keys::cert;
use crate::keys::home;
use crate::keys::private::{
    PassphraseSource, certificate_path, load_private_key, load_public_key_file, public_key_path,
};
use crate::keys::public::fingerprint;
use crate::proto::ProtoError;
use crate::proto::handshake::client::ClientSigner;
use crate::shown::shown;

/// The key a connection offers, and the certificate it presents with it (its encoding;
/// empty for none).
pub struct Identity {
    signer: Signer,
    certificate: Vec<u8>,
}

/// Where the private key is.
enum Signer {
    /// A private key read from its file.
    File(PrivateKey),
    /// A key the agent holds.
    Agent(AgentSigner),
}

impl ClientSigner for Identity {
    fn public_key(&self) -> &PublicKey {
        match &self.signer {
            Signer::File(key) => ClientSigner::public_key(key),
            Signer::Agent(signer) => signer.public_key(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProtoError> {
        match &self.signer {
            Signer::File(key) => ClientSigner::sign(key, message),
            Signer::Agent(signer) => signer.sign(message),
        }
    }

    fn certificate(&self) -> &[u8] {
        &self.certificate
    }
}

impl Identity {
    /// `signer`, with its certificate if there is a usable one: the file `opts` names, else
    /// the one beside `path`; when there is neither file, the one the agent holds with an
    /// agent's key.
    fn with_certificate_of(signer: Signer, path: Option<&Path>, opts: &ConnectOptions) -> Self {
        let mut identity = Self {
            signer,
            certificate: Vec::new(),
        };
        let file = match (&opts.certificate, path) {
            (Some(named), _) => Some(named.clone()),
            (None, Some(path)) => Some(certificate_path(path)),
            (None, None) => None,
        };
        let named = opts.certificate.is_some();
        let key = identity.public_key();
        let from_file = file.and_then(|file| certificate_for(&file, key, named, opts.quiet));
        let certificate = match (from_file, &identity.signer) {
            (Some(certificate), _) => certificate,
            (None, Signer::Agent(signer)) => agent_certificate(signer, opts.quiet),
            (None, Signer::File(_)) => Vec::new(),
        };
        identity.certificate = certificate;
        identity
    }
}

/// The certificate at `path` when it certifies `key` and is valid now (its encoding), else
/// nothing — with a warning, unless `quiet`, when there is a file that cannot be used (or,
/// when the config `named` it, none at all). `None` when there is no file and the config
/// did not name it (then the agent may hold one).
fn certificate_for(path: &Path, key: &PublicKey, named: bool, quiet: bool) -> Option<Vec<u8>> {
    let problem = match cert::presentable_at(path, key, cert::unix_now()) {
        Ok(Some(cert)) => {
            tracing::debug!(
                "presenting certificate {} ({:?}, serial {})",
                path.display(),
                shown(&cert.fields().name),
                cert.fields().serial
            );
            return Some(cert.encode());
        }
        Ok(None) if !named => return None,
        Ok(None) => "there is no such file".to_owned(),
        Err(problem) => problem,
    };
    warn_unpresented(&path.display().to_string(), &problem, quiet);
    Some(Vec::new())
}

/// The certificate the agent holds with `signer`'s key, when it is usable now (its
/// encoding), else nothing (with a warning, unless `quiet`, when it holds one that is not).
fn agent_certificate(signer: &AgentSigner, quiet: bool) -> Vec<u8> {
    let cert = match signer.certificate() {
        Ok(Some(cert)) => cert,
        Ok(None) => return Vec::new(),
        // An agent of an earlier build does not know the request: no certificate.
        Err(err) => {
            tracing::debug!("no certificate from the agent: {}", shown(&err.to_string()));
            return Vec::new();
        }
    };
    match cert.presentable_by(signer.public_key(), cert::unix_now()) {
        Ok(()) => {
            tracing::debug!(
                "presenting the agent's certificate ({:?}, serial {})",
                shown(&cert.fields().name),
                cert.fields().serial
            );
            cert.encode()
        }
        Err(problem) => {
            warn_unpresented("held by the agent", &problem, quiet);
            Vec::new()
        }
    }
}

fn warn_unpresented(which: &str, problem: &str, quiet: bool) {
    if !quiet {
        eprintln!(
            "seashell: warning: not presenting certificate {which}: {}; offering the key alone",
            shown(problem)
        );
    }
}

/// Chooses and loads the identity `opts` asks for (the rules above).
pub fn choose(opts: &ConnectOptions) -> Result<Identity, ClientError> {
    let default = home::default_identity()?;
    let named = opts.identity.as_deref();
    if let Some(agent) = Agent::from_env() {
        match agent.list() {
            Ok(keys) => {
                if let Some((signer, path)) = from_agent(&agent, &keys, named, &default)? {
                    return Ok(Identity::with_certificate_of(
                        Signer::Agent(signer),
                        path,
                        opts,
                    ));
                }
            }
            Err(err) => {
                if !opts.quiet {
                    eprintln!(
                        "seashell: warning: {}; using the key file instead",
                        shown(&err.to_string())
                    );
                }
            }
        }
    }
    let path = named.unwrap_or(&default);
    let passphrase = PassphraseSource::from_flag(opts.passphrase_file.as_deref());
    let key = load_private_key(path, &passphrase)?;
    tracing::debug!(
        "offering key {} from {}",
        fingerprint(key.public_key()),
        path.display()
    );
    Ok(Identity::with_certificate_of(
        Signer::File(key),
        Some(path),
        opts,
    ))
}

/// The agent's key to offer, with the key file it stands for when known (for its
/// certificate); `None` to read the key file instead.
fn from_agent<'a>(
    agent: &Agent,
    keys: &[AgentKey],
    named: Option<&'a Path>,
    default: &'a Path,
) -> Result<Option<(AgentSigner, Option<&'a Path>)>, ClientError> {
    let held = |path: &Path| {
        let (public, _) = load_public_key_file(&public_key_path(path)).ok()?;
        keys.iter().find(|key| key.public_key == public)
    };
    let offer = |key: &AgentKey, why: &str, path: Option<&'a Path>| {
        tracing::debug!(
            "offering agent key {} ({}) from {}: {why}",
            fingerprint(&key.public_key),
            shown(&key.comment),
            agent.socket().display()
        );
        Some((
            AgentSigner::new(agent.clone(), key.public_key.clone()),
            path,
        ))
    };
    if let Some(path) = named {
        return Ok(held(path).and_then(|key| offer(key, "the identity named", Some(path))));
    }
    if let Some(key) = held(default) {
        return Ok(offer(key, "the default identity", Some(default)));
    }
    match keys {
        [] => Ok(None),
        [only] => Ok(offer(only, "the agent's only key", None)),
        several => Err(ClientError::AgentChoice {
            count: several.len(),
            default: default.display().to_string(),
            keys: several
                .iter()
                .map(|key| format!("{} {}", fingerprint(&key.public_key), key.comment))
                .collect::<Vec<_>>()
                .join("; "),
        }),
    }
}
