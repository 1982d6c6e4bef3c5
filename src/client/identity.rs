//! Which key signs ClientAuth, and where it is: exactly one key per connection (the protocol
//! has one ClientAuth, and offering every key would show a server identities it was not
//! meant to see). With an agent (`SEASHELL_AUTH_SOCK`): the key named by `-i` or the config
//! when the agent holds it (known by the `.pub` beside it); else the default identity when
//! the agent holds it; else the agent's only key; else an error listing the agent's keys.
//! Without one, or when the agent holds no key or not the one named, the key file, as
//! before (a prompt on a terminal, else `--passphrase-file` or `SEASHELL_PASSPHRASE`).

use std::path::Path;

use crate::crypto::{PrivateKey, PublicKey};

use super::ClientError;
use super::connect::ConnectOptions;
use crate::agent::client::{Agent, AgentKey, AgentSigner};
use crate::keys::home;
use crate::keys::private::{
    PassphraseSource, load_private_key, load_public_key_file, public_key_path,
};
use crate::keys::public::fingerprint;
use crate::proto::ProtoError;
use crate::proto::handshake::client::ClientSigner;
use crate::shown::shown;

/// The key a connection offers.
pub enum Identity {
    /// A private key read from its file.
    File(PrivateKey),
    /// A key the agent holds.
    Agent(AgentSigner),
}

impl ClientSigner for Identity {
    fn public_key(&self) -> &PublicKey {
        match self {
            Self::File(key) => ClientSigner::public_key(key),
            Self::Agent(signer) => signer.public_key(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProtoError> {
        match self {
            Self::File(key) => ClientSigner::sign(key, message),
            Self::Agent(signer) => signer.sign(message),
        }
    }
}

/// Chooses and loads the identity `opts` asks for (the rules above).
pub fn choose(opts: &ConnectOptions) -> Result<Identity, ClientError> {
    let default = home::default_identity()?;
    let named = opts.identity.as_deref();
    if let Some(agent) = Agent::from_env() {
        match agent.list() {
            Ok(keys) => {
                if let Some(identity) = from_agent(&agent, &keys, named, &default)? {
                    return Ok(identity);
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
    Ok(Identity::File(key))
}

/// The agent's key to offer, `None` to read the key file instead.
fn from_agent(
    agent: &Agent,
    keys: &[AgentKey],
    named: Option<&Path>,
    default: &Path,
) -> Result<Option<Identity>, ClientError> {
    let held = |path: &Path| {
        let (public, _) = load_public_key_file(&public_key_path(path)).ok()?;
        keys.iter().find(|key| key.public_key == public)
    };
    let offer = |key: &AgentKey, why: &str| {
        tracing::debug!(
            "offering agent key {} ({}) from {}: {why}",
            fingerprint(&key.public_key),
            shown(&key.comment),
            agent.socket().display()
        );
        Some(Identity::Agent(AgentSigner::new(
            agent.clone(),
            key.public_key.clone(),
        )))
    };
    if let Some(path) = named {
        return Ok(held(path).and_then(|key| offer(key, "the identity named")));
    }
    if let Some(key) = held(default) {
        return Ok(offer(key, "the default identity"));
    }
    match keys {
        [] => Ok(None),
        [only] => Ok(offer(only, "the agent's only key")),
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
