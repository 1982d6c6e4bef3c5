//! Talking to a running agent: one request, one answer, over the Unix socket named by
//! `SEASHELL_AUTH_SOCK` (PROTOCOL.md §12), with a deadline so that a stuck agent cannot
//! hang a client; and [`AgentSigner`], a [`ClientSigner`] whose key stays in the agent. The
//! agent's answers are parsed totally and its text is never printed here. Nothing here
//! prompts or reads a key file.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::crypto::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::keys::cert::Certificate;
use crate::keys::public::from_spki_der;
use crate::proto::ProtoError;
use crate::proto::agent::{HEADER_LEN, Request, Response, frame_len};
use crate::proto::handshake::client::ClientSigner;

/// The environment variable that names the agent's socket.
pub const AUTH_SOCK_ENV: &str = "SEASHELL_AUTH_SOCK";
/// The environment variable that holds the agent's process id (for `agent -k`).
pub const AGENT_PID_ENV: &str = "SEASHELL_AGENT_PID";

/// How long a request may take, connect to answer (an RSA signature takes milliseconds).
const DEADLINE: Duration = Duration::from_secs(10);

/// A failure to use the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The socket could not be reached or the exchange broke off.
    #[error("cannot talk to the agent at {path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The agent answered what this client cannot parse, or not what was asked.
    #[error("the agent at {path} answered with a malformed or unexpected message")]
    Malformed {
        /// The socket.
        path: PathBuf,
    },
    /// The agent refused the request (its reason, from the agent: escape before printing).
    #[error("the agent refused: {0}")]
    Refused(String),
    /// A request too large for the protocol.
    #[error("request too large for the agent: {0}")]
    TooLarge(crate::proto::EncodeError),
}

/// A key the agent holds.
#[derive(Debug, Clone)]
pub struct AgentKey {
    /// Its public key.
    pub public_key: PublicKey,
    /// Its comment (from the agent: escape before printing).
    pub comment: String,
    /// Time left before the agent forgets it; `None` for never.
    pub expires_in: Option<Duration>,
}

/// A connection-less handle on the agent at a socket path: each request opens its own
/// connection, so one handle serves many sessions at once.
#[derive(Debug, Clone)]
pub struct Agent {
    socket: PathBuf,
}

impl Agent {
    /// The agent named by `SEASHELL_AUTH_SOCK`, if that is set and not empty.
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os(AUTH_SOCK_ENV).filter(|v| !v.is_empty())?;
        Some(Self::at(Path::new(&path)))
    }

    /// The agent at `socket`.
    pub fn at(socket: &Path) -> Self {
        Self {
            socket: socket.to_owned(),
        }
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Gives the agent `key` to hold under `comment`, for `lifetime` (none: until removed),
    /// with `certificate`, a user certificate of that key (its encoding; empty for none).
    pub fn add(
        &self,
        key: &PrivateKey,
        comment: &str,
        lifetime: Option<Duration>,
        certificate: &[u8],
    ) -> Result<(), AgentError> {
        let der = key
            .to_pkcs8_der()
            .map_err(|_| AgentError::Refused("the key does not encode as PKCS#8".into()))?;
        let lifetime_secs = lifetime.map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        self.expect_ok(&Request::Add {
            private_key: &der,
            comment,
            lifetime_secs,
            certificate,
        })
    }

    /// Asks the agent to forget `key`.
    pub fn remove(&self, key: &PublicKey) -> Result<(), AgentError> {
        let spki = key.spki_der().to_vec();
        self.expect_ok(&Request::Remove { public_key: &spki })
    }

    /// Asks the agent to forget every key.
    pub fn remove_all(&self) -> Result<(), AgentError> {
        self.expect_ok(&Request::RemoveAll)
    }

    /// The keys the agent holds, in the order they were added.
    pub fn list(&self) -> Result<Vec<AgentKey>, AgentError> {
        let answer = self.call(&Request::List)?;
        match Response::decode(&answer).map_err(|_| self.malformed())? {
            Response::Keys(keys) => keys
                .iter()
                .map(|listed| {
                    Ok(AgentKey {
                        public_key: from_spki_der(listed.public_key)
                            .map_err(|_| self.malformed())?,
                        comment: listed.comment.to_owned(),
                        expires_in: (listed.expires_in_secs > 0)
                            .then(|| Duration::from_secs(u64::from(listed.expires_in_secs))),
                    })
                })
                .collect(),
            Response::Failure(reason) => Err(AgentError::Refused(reason.to_owned())),
            _ => Err(self.malformed()),
        }
    }

    /// Has the agent sign `data` (a ClientAuth input) with `key`.
    pub fn sign(&self, key: &PublicKey, data: &[u8]) -> Result<Vec<u8>, AgentError> {
        let spki = key.spki_der().to_vec();
        let answer = self.call(&Request::Sign {
            public_key: &spki,
            data,
        })?;
        match Response::decode(&answer).map_err(|_| self.malformed())? {
            Response::Signature(signature) => Ok(signature.to_vec()),
            Response::Failure(reason) => Err(AgentError::Refused(reason.to_owned())),
            _ => Err(self.malformed()),
        }
    }

    /// The certificate the agent holds with `key`, if any (not verified: its CA and time are
    /// for the caller and the server to judge).
    pub fn certificate(&self, key: &PublicKey) -> Result<Option<Certificate>, AgentError> {
        let spki = key.spki_der().to_vec();
        let answer = self.call(&Request::Certificate { public_key: &spki })?;
        match Response::decode(&answer).map_err(|_| self.malformed())? {
            Response::Certificate([]) => Ok(None),
            Response::Certificate(bytes) => Certificate::decode(bytes)
                .map(Some)
                .map_err(|_| self.malformed()),
            Response::Failure(reason) => Err(AgentError::Refused(reason.to_owned())),
            _ => Err(self.malformed()),
        }
    }

    fn expect_ok(&self, request: &Request<'_>) -> Result<(), AgentError> {
        let answer = self.call(request)?;
        match Response::decode(&answer).map_err(|_| self.malformed())? {
            Response::Ok => Ok(()),
            Response::Failure(reason) => Err(AgentError::Refused(reason.to_owned())),
            _ => Err(self.malformed()),
        }
    }

    /// One exchange: the request's frame out, the answer's body back.
    fn call(&self, request: &Request<'_>) -> Result<Zeroizing<Vec<u8>>, AgentError> {
        let mut frame = Zeroizing::new(Vec::new());
        request.encode(&mut frame).map_err(AgentError::TooLarge)?;
        let io = |source| AgentError::Io {
            path: self.socket.clone(),
            source,
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(io)?;
        stream.set_read_timeout(Some(DEADLINE)).map_err(io)?;
        stream.set_write_timeout(Some(DEADLINE)).map_err(io)?;
        stream.write_all(&frame).map_err(io)?;
        let mut header = [0u8; HEADER_LEN];
        stream.read_exact(&mut header).map_err(io)?;
        let len = frame_len(header).map_err(|_| self.malformed())?;
        let mut body = Zeroizing::new(vec![0u8; len]);
        stream.read_exact(&mut body).map_err(io)?;
        Ok(body)
    }

    fn malformed(&self) -> AgentError {
        AgentError::Malformed {
            path: self.socket.clone(),
        }
    }
}

/// A client identity whose private key is in the agent.
#[derive(Debug, Clone)]
pub struct AgentSigner {
    agent: Agent,
    public_key: PublicKey,
}

impl AgentSigner {
    /// Signs with the agent's key `public_key`.
    pub fn new(agent: Agent, public_key: PublicKey) -> Self {
        Self { agent, public_key }
    }

    /// The certificate the agent holds with this key, if any.
    pub fn certificate(&self) -> Result<Option<Certificate>, AgentError> {
        self.agent.certificate(&self.public_key)
    }
}

impl ClientSigner for AgentSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProtoError> {
        self.agent.sign(&self.public_key, message).map_err(|err| {
            tracing::warn!("{}", crate::shown::shown(&err.to_string()));
            ProtoError::Crypto("signing by the agent")
        })
    }
}
