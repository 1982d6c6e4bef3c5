//! The identity agent, like ssh-agent: a process of the user's that holds decrypted private
//! keys and signs ClientAuth inputs with them over a Unix socket, so that a passphrase is
//! typed once per login, not once per connection (PROTOCOL.md §12). [`store`] is the pure
//! key store, [`daemon`] the process around it, [`client`] what the client commands use to
//! talk to it. This layer sits beside transport: it never imports the client, the server,
//! the audit log, the configuration or the command line.

pub mod client;
pub mod daemon;
pub mod store;
