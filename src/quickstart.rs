//! `seashell quickstart`: a local demo in one command. Makes, when missing, a host key, a
//! client key and an authorized_keys under `keys/` (in the current directory), starts a
//! server on 127.0.0.1 on a free port inside this process, and opens the REPL connected to
//! it, pinned to the host key by fingerprint.

use std::net::SocketAddr;
use std::path::Path;

use tokio::runtime::Runtime;

use crate::client::ClientError;
use crate::client::connect::ConnectOptions;
use crate::client::dest::Destination;
use crate::client::repl;
use crate::client::terminal::PtyRequest;
use crate::keys::KeyError;
use crate::keys::private::{generate, load_public_key_file, public_key_path, write_key_pair};
use crate::keys::public::{fingerprint, to_line};
use crate::server::{self, ServeError, ServerSettings};

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuickstartError {
    /// Making or reading the demo keys.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Starting the server.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The REPL.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Writing keys/authorized_keys.
    #[error("cannot write keys/authorized_keys: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the demo; returns the REPL's exit code.
pub fn run(runtime: &Runtime) -> Result<u8, QuickstartError> {
    let dir = Path::new("keys");
    std::fs::create_dir_all(dir)?;
    let host_key = dir.join("host_rsa");
    let client_key = dir.join("id_rsa");
    ensure_key(&host_key, "quickstart-host")?;
    ensure_key(&client_key, "quickstart-client")?;
    let authorized = dir.join("authorized_keys");
    if !authorized.exists() {
        let (key, comment) = load_public_key_file(&public_key_path(&client_key))?;
        std::fs::write(&authorized, format!("{}\n", to_line(&key, &comment)))?;
    }
    let (host_public, _) = load_public_key_file(&public_key_path(&host_key))?;

    let mut settings = ServerSettings::with_defaults()?;
    settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.host_key = host_key;
    settings.authorized_keys = authorized;
    eprintln!("seashell quickstart: starting a server on 127.0.0.1 (making its transport key)...");
    let server = runtime.block_on(server::bind(settings))?;
    let addr = server.local_addr()?;
    runtime.spawn(server.run());
    eprintln!(
        "seashell quickstart: server on {addr}, host key {}.\n\
         Keys are in keys/. Lines run in your shell on the server; `:help` for the console's own commands, Ctrl-D or `exit` to leave.",
        fingerprint(&host_public)
    );
    let opts = ConnectOptions {
        identity: Some(client_key),
        certificate: None,
        account: None,
        known_hosts: None,
        accept_new: false,
        host_fingerprint: Some(fingerprint(&host_public)),
        passphrase_file: None,
        quiet: false,
        ask_host_key: true,
    };
    let dest = Destination {
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    Ok(repl::run(runtime, dest, &opts, PtyRequest::IfTerminal)?)
}

fn ensure_key(path: &Path, comment: &str) -> Result<(), KeyError> {
    if path.exists() {
        return Ok(());
    }
    eprintln!(
        "seashell quickstart: generating {} (RSA-3072)...",
        path.display()
    );
    let key = generate(3072)?;
    write_key_pair(path, &key, comment, None, false)
}
