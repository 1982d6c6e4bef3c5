//! `seashell cp [-r] [-p] [--resume] [-P PORT] [-i KEY] SRC... DST`, like scp: a remote path
//! is `host:path` or `[v6addr]:path` (relative to the server user's home; `host:` is the
//! home itself), anything else is local (write `./a:b` for a local name with a colon).
//! Either every SRC is local and DST remote (upload), or every SRC is on one host and DST
//! local (download). Exit codes: 0; 1 for a usage or file error (each printed with its path
//! and reason; the other sources still go); 255 when seashell itself fails; 128+N when
//! interrupted by signal N (partial files removed, except with `--resume`).

use std::path::PathBuf;

use super::ClientError;
use super::connect::{ConnectOptions, connect};
use super::console::RemoteConsole;
use super::dest::Destination;
use super::transfer::{FileTransfer, Interrupts, TransferError, TransferOptions};
use crate::shown::shown;

/// One SRC or DST argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A local path.
    Local(PathBuf),
    /// `host:path` or `user@host:path`.
    Remote {
        /// The host as written, with its `user@` (an IPv6 address keeps its brackets).
        host: String,
        /// The path on it (may be empty: the home directory).
        path: String,
    },
}

impl Endpoint {
    /// Reads `host:path`, `[v6]:path`, either after `user@`, or a local path.
    pub fn parse(arg: &str) -> Self {
        let (user, rest) = match arg.split_once('@') {
            Some((user, rest)) if !user.contains(['/', ':']) => (format!("{user}@"), rest),
            _ => (String::new(), arg),
        };
        let remote = if let Some(bracketed) = rest.strip_prefix('[') {
            bracketed
                .split_once("]:")
                .map(|(host, path)| (format!("{user}[{host}]"), path))
        } else {
            match rest.split_once(':') {
                Some((host, path)) if !host.is_empty() && !host.contains('/') => {
                    Some((format!("{user}{host}"), path))
                }
                _ => None,
            }
        };
        match remote {
            Some((host, path)) => Self::Remote {
                host,
                path: path.to_owned(),
            },
            None => Self::Local(PathBuf::from(arg)),
        }
    }
}

/// Which way a `cp` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Local files to `host:dest`.
    Upload {
        /// The server.
        host: String,
        /// Local sources.
        sources: Vec<PathBuf>,
        /// Remote destination.
        dest: String,
    },
    /// `host:` files to a local destination.
    Download {
        /// The server.
        host: String,
        /// Remote sources.
        sources: Vec<String>,
        /// Local destination.
        dest: PathBuf,
    },
}

/// Why `cp` did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CpError {
    /// A bad command line (exit 1).
    #[error("{0}")]
    Usage(String),
    /// seashell failed (exit 255).
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl CpError {
    /// 1 for usage errors, 255 for seashell's failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 1,
            Self::Client(_) => 255,
        }
    }
}

impl Plan {
    /// Works out the direction from `SRC... DST`.
    pub fn from_args(args: &[String]) -> Result<Self, CpError> {
        let usage = |text: &str| CpError::Usage(text.to_owned());
        let (dest, sources) = match args.split_last() {
            Some((dest, sources)) if !sources.is_empty() => (dest, sources),
            _ => return Err(usage("cp needs at least one SRC and a DST")),
        };
        let sources: Vec<Endpoint> = sources.iter().map(|s| Endpoint::parse(s)).collect();
        match Endpoint::parse(dest) {
            Endpoint::Remote { host, path } => {
                let sources = sources
                    .into_iter()
                    .map(|source| match source {
                        Endpoint::Local(path) => Ok(path),
                        Endpoint::Remote { .. } => Err(usage(
                            "remote-to-remote copies are not supported: copy through a local file",
                        )),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Self::Upload {
                    host,
                    sources,
                    dest: path,
                })
            }
            Endpoint::Local(dest) => {
                let mut hosts = sources.iter().map(|source| match source {
                    Endpoint::Remote { host, .. } => Some(host.clone()),
                    Endpoint::Local(_) => None,
                });
                let host = hosts.next().flatten().ok_or_else(|| {
                    usage("no remote path (host:path) among the arguments: use cp for local copies")
                })?;
                if hosts.any(|h| h.as_ref() != Some(&host)) {
                    return Err(usage(
                        "when DST is local, every SRC must be a host:path on one host",
                    ));
                }
                let sources = sources
                    .into_iter()
                    .filter_map(|source| match source {
                        Endpoint::Remote { path, .. } if path.is_empty() => Some(".".to_owned()),
                        Endpoint::Remote { path, .. } => Some(path),
                        Endpoint::Local(_) => None,
                    })
                    .collect();
                Ok(Self::Download {
                    host,
                    sources,
                    dest,
                })
            }
        }
    }

    /// The remote side's DEST: an alias, host or `[ipv6]`.
    pub fn host(&self) -> &str {
        match self {
            Self::Upload { host, .. } | Self::Download { host, .. } => host,
        }
    }
}

/// Connects and copies; returns the exit code (failures of single files are printed).
pub async fn copy(
    plan: &Plan,
    dest: Destination,
    opts: &ConnectOptions,
    options: TransferOptions,
) -> Result<u8, CpError> {
    let connection = connect(dest, opts, None).await?;
    let mut console = RemoteConsole::start(connection.channel, None).await?;
    let mut transfer = FileTransfer::new(
        &mut console,
        plan.host(),
        options,
        Interrupts::InterruptAndTerminate,
    );
    let result = match plan {
        Plan::Upload { sources, dest, .. } => transfer.put_all(sources, dest).await,
        Plan::Download { sources, dest, .. } => transfer.get_all(sources, dest).await,
    };
    let code = match result {
        Ok(all_ok) => u8::from(!all_ok),
        Err(TransferError::Session(err)) => return Err(err.into()),
        Err(err) => {
            eprintln!("seashell: {}", shown(&err.to_string()));
            err.exit_code()
        }
    };
    console.close().await;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn endpoints() {
        let remote = |host: &str, path: &str| Endpoint::Remote {
            host: host.into(),
            path: path.into(),
        };
        assert_eq!(Endpoint::parse("box:a/b"), remote("box", "a/b"));
        assert_eq!(Endpoint::parse("box:"), remote("box", ""));
        assert_eq!(Endpoint::parse("[::1]:/tmp/x"), remote("[::1]", "/tmp/x"));
        assert_eq!(Endpoint::parse("10.0.0.1:f"), remote("10.0.0.1", "f"));
        assert_eq!(Endpoint::parse("root@box:d"), remote("root@box", "d"));
        assert_eq!(Endpoint::parse("me@[::1]:x"), remote("me@[::1]", "x"));
        assert_eq!(Endpoint::parse("box:a@b"), remote("box", "a@b"));
        for local in [
            "file", "./a:b", "/abs:x", ":x", "[::1]", "a@b", "./x@y:z", "u@[::1]",
        ] {
            assert_eq!(
                Endpoint::parse(local),
                Endpoint::Local(local.into()),
                "{local}"
            );
        }
    }

    #[test]
    fn plans() {
        assert_eq!(
            Plan::from_args(&args(&["a", "b", "box:d"])).unwrap(),
            Plan::Upload {
                host: "box".into(),
                sources: vec!["a".into(), "b".into()],
                dest: "d".into()
            }
        );
        assert_eq!(
            Plan::from_args(&args(&["box:x", "box:", "."])).unwrap(),
            Plan::Download {
                host: "box".into(),
                sources: vec!["x".into(), ".".into()],
                dest: ".".into()
            }
        );
        for bad in [
            &["a", "b"][..],
            &["box:a", "other:b"],
            &["box:a", "c", "."],
            &["box:a", "other:b", "."],
            &["box:a"],
        ] {
            let err = Plan::from_args(&args(bad)).err().unwrap();
            assert_eq!(err.exit_code(), 1, "{bad:?}");
        }
    }
}
