//! The command-line interface: clap definitions of every subcommand and its flags. Parsing
//! only; `main.rs` hands the parsed values to the library.

use std::path::PathBuf;
use std::sync::LazyLock;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::audit::syslog::SyslogTarget;
use crate::config::AUDIT_MAX_BYTES;

/// `--version`'s text: the version and the crypto provider this binary was built with.
static LONG_VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (crypto provider: {})",
        env!("CARGO_PKG_VERSION"),
        crate::crypto::PROVIDER
    )
});

/// seashell: an encrypted remote console for LANs.
#[derive(Debug, Parser)]
#[command(name = "seashell", version, long_version = LONG_VERSION.as_str(), about, long_about = None)]
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
    /// Certificate authority: certify a user's or a host's key, or read a certificate.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Run the server: authenticate clients by key and run their command lines.
    Serve(ServeArgs),
    /// Open the remote console (a REPL; script mode when stdin is not a terminal).
    Connect(ConnectArgs),
    /// Run one command remotely, like `ssh host cmd`.
    Exec(ExecArgs),
    /// Copy files to or from a server, like scp (host:path is remote).
    Cp(CpArgs),
    /// Manage known_hosts.
    #[command(name = "known-hosts", subcommand)]
    KnownHosts(KnownHostsCommand),
    /// Read the client configuration ($SEASHELL_HOME/config: host aliases).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check or read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Start an identity agent, like ssh-agent: `eval "$(seashell agent)"`.
    Agent(AgentArgs),
    /// Give keys to the agent, like ssh-add: a passphrase typed once, then no prompt.
    Add(AddArgs),
    /// Local demo: keys under keys/, a server on 127.0.0.1, and the REPL connected to it.
    Quickstart,
}

/// `seashell agent`.
#[derive(Debug, Args)]
#[command(after_help = "Environment:
  SEASHELL_AGENT_PID  the agent -k stops
  SHELL               csh syntax when it ends in csh (unless -s)
  TMPDIR              where the socket's directory goes (default /tmp)

Exit status:
  0 once the agent runs (or, with -k, was stopped); 1 for a usage error; 255 when it cannot
  start")]
pub struct AgentArgs {
    /// Print csh commands (setenv), whatever $SHELL is.
    #[arg(short = 'c', conflicts_with = "sh")]
    pub csh: bool,
    /// Print sh commands (the default unless $SHELL ends in csh).
    #[arg(short = 's')]
    pub sh: bool,
    /// Stop the agent named by $SEASHELL_AGENT_PID, and print the commands that unset it.
    #[arg(short = 'k', conflicts_with_all = ["foreground", "socket"])]
    pub kill: bool,
    /// Stay in the foreground (for a systemd user unit); log to stderr.
    #[arg(short = 'D')]
    pub foreground: bool,
    /// Listen on this socket. Default: $TMPDIR/seashell-XXXXXXXXXXXX/agent.PID, in a new
    /// 0700 directory.
    #[arg(short = 'a', value_name = "SOCKET")]
    pub socket: Option<PathBuf>,
    /// Started by `seashell agent` itself: a new session, detached from the terminal.
    #[arg(long, hide = true)]
    pub detached: bool,
}

/// `seashell add`.
#[derive(Debug, Args)]
#[command(after_help = "Environment:
  SEASHELL_AUTH_SOCK   the agent's socket (set by `eval \"$(seashell agent)\"`)
  SEASHELL_HOME        the client's directory (default ~/.seashell): id_rsa
  SEASHELL_PASSPHRASE  the keys' passphrase, when there is no --passphrase-file

Exit status:
  0 done; 1 for a usage error, or -l when the agent holds no key; 255 when the agent cannot
  be reached, refuses, or a key cannot be read")]
pub struct AddArgs {
    /// Forget the keys after this long (`90s`, `30m`, `8h`, `2d`; a bare number is seconds).
    #[arg(short = 't', value_name = "LIFETIME", value_parser = parse_lifetime)]
    pub lifetime: Option<std::time::Duration>,
    /// List the agent's keys: bits, fingerprint, comment, time left, and the certificate
    /// held with each.
    #[arg(short = 'l', conflicts_with_all = ["lifetime", "remove", "remove_all", "keys"])]
    pub list: bool,
    /// Remove the KEYs from the agent (a private key or its .pub).
    #[arg(short = 'd', conflicts_with_all = ["lifetime", "remove_all"])]
    pub remove: bool,
    /// Remove every key from the agent.
    #[arg(short = 'D', conflicts_with_all = ["lifetime", "keys"])]
    pub remove_all: bool,
    /// Read the keys' passphrase from the first line of FILE (for scripts).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Private keys, each with its certificate KEY-cert.pub if there is one. Default:
    /// $SEASHELL_HOME/id_rsa.
    #[arg(value_name = "KEY")]
    pub keys: Vec<PathBuf>,
}

/// A lifetime: a bare number of seconds, or humantime's `90s`, `30m`, `8h`, `2d`, `1w`;
/// from 1 second to 2^32 - 1.
fn parse_lifetime(text: &str) -> Result<std::time::Duration, String> {
    let duration = if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>()
            .map(std::time::Duration::from_secs)
            .map_err(|err| err.to_string())?
    } else {
        humantime::parse_duration(text).map_err(|err| format!("{err} (e.g. 90s, 30m, 8h, 2d)"))?
    };
    if duration.as_secs() == 0 || duration.as_secs() > u64::from(u32::MAX) {
        return Err("a lifetime is 1 second to 136 years".to_owned());
    }
    Ok(duration)
}

/// `seashell serve`.
#[derive(Debug, Args)]
#[command(after_help = "Environment:
  SEASHELL_HOME  the server's directory (default ~/.seashell): host_rsa, authorized_keys
  RUST_LOG       the log filter (default info)

Every other default (limits, timeouts, the audit log's) is in docs/seashell.toml.

Exit status:
  0 after a clean stop (SIGTERM, SIGINT); 1 for a bad flag or configuration; 255 when it
  cannot start or fails")]
pub struct ServeArgs {
    /// TOML configuration file (see docs/seashell.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (IPv6: `[::]:7022`; port 0 picks a free port). Default:
    /// 0.0.0.0:7022.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Host key (private). Default: $SEASHELL_HOME/host_rsa.
    #[arg(long, value_name = "PATH")]
    pub host_key: Option<PathBuf>,
    /// authorized_keys file. Default: $SEASHELL_HOME/authorized_keys.
    #[arg(long, value_name = "PATH")]
    pub authorized_keys: Option<PathBuf>,
    /// Host certificate to present beside the host key (`seashell ca sign --host`), so
    /// that clients trusting its CA (`@cert-authority` in known_hosts) need no prompt.
    #[arg(long, value_name = "FILE")]
    pub host_cert: Option<PathBuf>,
    /// Write the signed, hash-chained audit log here (continued if it exists).
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// Rotate the audit log when it reaches this size (PATH -> PATH.1 -> PATH.2 ...);
    /// default 64 MiB, 1024 to 2^40 (the config's `audit_max_bytes` range).
    #[arg(long, value_name = "BYTES",
          value_parser = clap::value_parser!(u64)
              .range(AUDIT_MAX_BYTES.min..=AUDIT_MAX_BYTES.max))]
    pub audit_max_bytes: Option<u64>,
    /// Also send each audit event to syslog: `unix:/dev/log` or `udp:HOST[:PORT]`.
    #[arg(long, value_name = "TARGET")]
    pub syslog: Option<SyslogTarget>,
}

/// A client command's `--help` epilogue: the environment it reads, then its exit status.
macro_rules! client_after_help {
    ($exit:literal) => {
        concat!(
            "Environment:
  SEASHELL_HOME        the client's directory (default ~/.seashell): id_rsa, known_hosts,
                       config, history
  SEASHELL_PASSPHRASE  the identity's passphrase, when there is no --passphrase-file
  SEASHELL_AUTH_SOCK   the agent's socket: its key signs in place of the identity file
  RUST_LOG             a log filter, over -v (e.g. seashell=trace)

Exit status:
",
            $exit
        )
    };
}

/// Who we are and which host keys we trust (shared by connect, exec and cp).
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Client configuration (host aliases). Default: $SEASHELL_HOME/config, if it exists.
    #[arg(short = 'F', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Identity (private key). Default: $SEASHELL_HOME/id_rsa.
    #[arg(short = 'i', value_name = "KEY")]
    pub identity: Option<PathBuf>,
    /// known_hosts file. Default: $SEASHELL_HOME/known_hosts.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Trust and record a host key seen for the first time.
    #[arg(long)]
    pub accept_new: bool,
    /// Trust exactly this host key (SHA256:...), without known_hosts.
    #[arg(long, value_name = "SHA256:...")]
    pub host_fingerprint: Option<String>,
    /// Read the identity's passphrase from the first line of FILE (for scripts).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Say what the client does on stderr (connect, host key, key offered, result); -vv more.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
    /// Quiet: no warnings or notices (errors still), like ssh -q.
    #[arg(short = 'q')]
    pub quiet: bool,
}

/// How to reach and trust a server, but where (shared by connect and exec).
#[derive(Debug, Args)]
pub struct ReachArgs {
    /// Identity and host key trust.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Port (default 7022; wins over a port in DEST).
    #[arg(short = 'p', value_name = "PORT")]
    pub port: Option<u16>,
    /// The account to ask for (wins over `user@` in DEST): the server refuses any but its own.
    #[arg(short = 'l', value_name = "USER")]
    pub user: Option<String>,
}

/// Where and how to reach and trust a server (connect).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// How.
    #[command(flatten)]
    pub reach: ReachArgs,
    /// An alias of the client configuration, host, host:port or `[ipv6]:port`, maybe after
    /// `user@`.
    #[arg(value_name = "DEST")]
    pub dest: String,
}

/// `seashell connect`.
#[derive(Debug, Args)]
#[command(after_help = client_after_help!(
    "  the last command's status (`exit N`: N); 255 when seashell fails (connect, host key,
  authentication, protocol) or after ~.; 1 for a usage error"
))]
pub struct ConnectArgs {
    /// Where and how to connect.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Run each line on pipes, never on a pseudo-terminal (stdin closed, Ctrl-C interrupts).
    #[arg(short = 'T')]
    pub no_pty: bool,
}

/// `seashell exec`.
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("fan_out").multiple(true)),
    override_usage = "seashell exec [OPTIONS] DEST [--] COMMAND...
       seashell exec [OPTIONS] -g GROUP|-H HOST... [--] COMMAND...",
    after_help = client_after_help!(
        "  the remote command's code; 128+N if it died of signal N; 141 when whoever reads the
  output goes away; 255 when seashell fails (connect, host key, authentication, protocol) or
  after ~.; 1 for a usage error.
  With -g/-H: 0 when every command exited 0; 4 when every host was reached but some command
  failed (exit not 0, a signal, --timeout); 255 when some host could not be reached, verified
  or authenticated to; 130 after a second Ctrl-C"
    )
)]
pub struct ExecArgs {
    /// How to connect.
    #[command(flatten)]
    pub reach: ReachArgs,
    /// Run the command on every host of GROUP, from the client configuration's `[group]`
    /// (repeatable; then there is no DEST).
    #[arg(short = 'g', long = "group", value_name = "GROUP", group = "fan_out")]
    pub groups: Vec<String>,
    /// Run the command on HOST too (an alias or host:port; a comma-separated list; repeatable;
    /// after the groups' hosts).
    #[arg(short = 'H', long = "host", value_name = "HOST", group = "fan_out")]
    pub hosts: Vec<String>,
    /// With -g/-H: at most N sessions at once (default 32; 1 keeps the order given).
    #[arg(long, value_name = "N", requires = "fan_out")]
    pub parallel: Option<std::num::NonZeroUsize>,
    /// With -g/-H: give up on a host whose whole session takes longer than SECS.
    #[arg(long, value_name = "SECS", requires = "fan_out",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// With -g/-H: no `HOST: ` before each line of output.
    #[arg(long, requires = "fan_out")]
    pub no_prefix: bool,
    /// Print one JSON object at the end (host, address, exit, signal, stdout, stderr, their
    /// encodings, duration_ms, error); with -g/-H, one line per host.
    #[arg(long, conflicts_with = "tty")]
    pub json: bool,
    /// Run the command on a pseudo-terminal if stdin is a terminal (like ssh -t); twice
    /// (-tt), even when it is not.
    #[arg(short = 't', action = ArgAction::Count, conflicts_with = "fan_out")]
    pub tty: u8,
    /// Never a pseudo-terminal (the default for exec).
    #[arg(short = 'T', conflicts_with = "tty")]
    pub no_pty: bool,
    /// An alias of the client configuration, host, host:port or `[ipv6]:port`, maybe after
    /// `user@`; none with -g/-H.
    #[arg(value_name = "DEST", required_unless_present = "fan_out")]
    pub dest: Option<String>,
    /// The command: everything after DEST (`--` before it is accepted), like `ssh host cmd`;
    /// its words are joined with spaces and run by the server user's shell.
    #[arg(
        required_unless_present = "fan_out",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

impl ExecArgs {
    /// Whether `-g` or `-H` was given.
    pub fn fans_out(&self) -> bool {
        !self.groups.is_empty() || !self.hosts.is_empty()
    }

    /// The command's words: with `-g`/`-H` there is no DEST, so what clap took for one is
    /// the command's first word.
    pub fn words(&self) -> Vec<String> {
        if self.fans_out() {
            self.dest.iter().chain(&self.command).cloned().collect()
        } else {
            self.command.clone()
        }
    }
}

/// `seashell cp`.
#[derive(Debug, Args)]
#[command(
    override_usage = "seashell cp [OPTIONS] SRC... DST",
    after_help = client_after_help!(
        "  0 when every file was copied; 1 when one could not be (each failure printed, the
  others still copied) or for a usage error; 130/143 when interrupted by Ctrl-C/SIGTERM; 255
  when seashell fails (connect, host key, authentication, protocol)"
    )
)]
pub struct CpArgs {
    /// Copy directories recursively.
    #[arg(short = 'r')]
    pub recursive: bool,
    /// Keep mtimes, and modes exactly as sent (without it, downloads are masked by the umask).
    #[arg(short = 'p')]
    pub preserve_times: bool,
    /// Continue interrupted transfers from the bytes already there, after checking their hash.
    #[arg(long)]
    pub resume: bool,
    /// Port (default 7022).
    #[arg(short = 'P', value_name = "PORT")]
    pub port: Option<u16>,
    /// Identity and host key trust.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// SRC... DST: local paths, or `[user@]host:path` / `[user@][ipv6]:path` (relative to the
    /// server user's home).
    #[arg(required = true, num_args = 2.., value_name = "PATH")]
    pub paths: Vec<String>,
}

/// `seashell known-hosts ...`.
#[derive(Debug, Subcommand)]
pub enum KnownHostsCommand {
    /// Remove every key pinned for HOST (port 7022 unless given).
    Forget {
        /// host, host:port, `[ipv6]` or `[ipv6]:port`.
        #[arg(value_name = "HOST")]
        host_port: String,
        /// known_hosts file. Default: $SEASHELL_HOME/known_hosts.
        #[arg(long, value_name = "FILE")]
        known_hosts: Option<PathBuf>,
    },
}

/// `seashell config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the settings a command for HOST would use and where each came from (like
    /// `ssh -G`): one `key = value  # origin` line each.
    Show {
        /// An alias, host, host:port or `[ipv6]:port`.
        #[arg(value_name = "HOST")]
        host: String,
        /// Client configuration. Default: $SEASHELL_HOME/config, if it exists.
        #[arg(short = 'F', value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// `seashell audit ...`. Exit codes of `verify`: 0 intact and ending in its final seal, 1
/// broken (or unreadable, or missing a checkpoint its witness recorded), 2 intact but not
/// ending in its final seal (live, crashed or cut).
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every link of the chain and every checkpoint signature.
    #[command(after_help = "Exit status:
  0 intact and ending in its final seal (a clean stop); 1 broken, unreadable, or missing a
  checkpoint its witness recorded; 2 intact but not sealed: live (a running server's log),
  crashed or cut (check it with --witness)")]
    Verify {
        /// The server's public host key.
        #[arg(long, value_name = "HOST.pub")]
        host_key: PathBuf,
        /// Checkpoints recorded elsewhere (what the syslog sink sent, as RFC 5424 lines or as
        /// JSON lines): each must be in the log, or verification fails.
        #[arg(long, value_name = "FILE")]
        witness: Option<PathBuf>,
        /// The log; one FILE stands for its rotated set (FILE.N ... FILE.1 FILE), several
        /// files are taken oldest first.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the log as a table (time, host, name, exit, duration, command) or as JSON lines.
    Show {
        /// The log; one FILE stands for its rotated set, several files are taken oldest first.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Only events of this key (SHA256:...).
        #[arg(long, value_name = "FP")]
        key: Option<String>,
        /// Only events at or after TIME (RFC 3339, or YYYY-MM-DD for midnight UTC).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only events whose command, name or peer contains TEXT.
        #[arg(long, value_name = "TEXT")]
        grep: Option<String>,
        /// Print the matching events as JSON lines, as written in the log.
        #[arg(long)]
        json: bool,
    },
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
    /// Print the public key line of the private key -f KEY (like ssh-keygen -y); makes nothing.
    #[arg(short = 'y', requires = "file", conflicts_with_all = ["force", "no_passphrase", "comment"])]
    pub public_of: bool,
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

/// `seashell ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Certify a public key with a CA key: writes KEY-cert.pub beside KEY.pub (like
    /// ssh-keygen -s), replacing an older certificate there.
    Sign(CaSignArgs),
    /// Print a certificate's fields: key, name or hosts, serial, validity, options, CA.
    #[command(after_help = "Exit status:
  0 when the file holds a certificate (whether valid now or not: see `status`); 1 when it
  cannot be read as one")]
    Show {
        /// A certificate file (`KEY-cert.pub`).
        #[arg(value_name = "CERT")]
        file: PathBuf,
    },
}

/// `seashell ca sign`.
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("validity").required(true).args(["valid", "valid_until"])),
    after_help = "Examples:
  seashell ca sign --ca ca_rsa --name ann --valid 8h ann.pub
  seashell ca sign --ca ca_rsa --host --name web1.lan,10.0.0.7 --valid 52w host_rsa.pub
  seashell ca sign --ca ca_rsa --name ci --valid 30d --option no-pty \\
      --option 'allow=\"systemctl status *\"' ci.pub

Environment:
  SEASHELL_PASSPHRASE  the CA key's passphrase, when there is no --passphrase-file

Exit status:
  0 once the certificate is written; 1 for a usage error, a bad name, option or window, or
  a key file that cannot be read or written"
)]
pub struct CaSignArgs {
    /// The CA's private key (an ordinary key from `seashell keygen`; keep it offline).
    #[arg(long, value_name = "CA_KEY")]
    pub ca: PathBuf,
    /// Read the CA key's passphrase from the first line of FILE (for scripts).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// The user's identity; with --host, the names and addresses the host may serve,
    /// comma-separated (exact: no `*.lan` patterns).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Certify a host's key (the default: a user's).
    #[arg(long)]
    pub host: bool,
    /// The serial number, to revoke the certificate by (`serial:CA-FINGERPRINT:N`). Default:
    /// a random 64-bit number.
    #[arg(long, value_name = "N")]
    pub serial: Option<u64>,
    /// Valid from now for DURATION: a number and one unit of s, m, h, d, w (`8h`, `30d`,
    /// `52w`). This or --valid-until is required.
    #[arg(long, value_name = "DURATION", value_parser = crate::keys::ca::parse_duration,
          conflicts_with_all = ["valid_from", "valid_until"])]
    pub valid: Option<u64>,
    /// Valid from T, an RFC 3339 time (`2026-03-02T08:00:00Z`). Default: now.
    #[arg(long, value_name = "T", value_parser = crate::keys::ca::parse_time)]
    pub valid_from: Option<u64>,
    /// Valid until T, an RFC 3339 time.
    #[arg(long, value_name = "T", value_parser = crate::keys::ca::parse_time)]
    pub valid_until: Option<u64>,
    /// An authorized_keys option the certificate carries, in authorized_keys syntax
    /// (`no-files`, `no-pty`, `allow="systemctl status *"`, `command="NAME"`,
    /// `from="10.0.0.0/8"`); repeatable.
    #[arg(long = "option", value_name = "OPT")]
    pub options: Vec<String>,
    /// The public key to certify.
    #[arg(value_name = "KEY.pub")]
    pub key: PathBuf,
}

/// Why seashell has no such flag, for the ssh flags it deliberately lacks (`-L`, `-R`, `-D`,
/// `-A`, `-X`, `-Y`, `-J`, each possibly with its value attached).
pub fn lacking_flag(arg: &str) -> Option<&'static str> {
    let flag = arg.get(..2)?;
    match flag {
        "-L" | "-R" | "-D" => Some("seashell does not forward ports; use ssh for tunnels"),
        "-A" => Some("seashell has no agent forwarding: a private key never leaves its host"),
        "-X" | "-Y" => Some("seashell does not forward X11"),
        "-J" => Some("seashell has no jump hosts: run seashell on the jump host instead"),
        _ => None,
    }
}

/// A usage error as clap renders it, without clap's advice to pass a flag after `--`: for a
/// client command that is wrong (what follows DEST is the command's already).
pub fn without_dash_dash_tip(rendered: &str) -> String {
    rendered
        .lines()
        .filter(|line| !line.trim_start().starts_with("tip: to pass"))
        .map(|line| format!("{line}\n"))
        .collect()
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

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn audit_max_bytes(value: &str) -> Result<Option<u64>, clap::Error> {
        let cli = Cli::try_parse_from(["seashell", "serve", "--audit-max-bytes", value])?;
        match cli.command {
            Command::Serve(args) => Ok(args.audit_max_bytes),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_flag_gets_no_dash_dash_tip_and_lacking_ssh_flags_say_why() {
        let err = Cli::try_parse_from(["seashell", "exec", "--jsn", "box", "true"]).unwrap_err();
        let text = without_dash_dash_tip(&err.render().to_string());
        assert!(text.contains("unexpected argument '--jsn'"), "{text}");
        assert!(
            text.contains("a similar argument exists: '--json'"),
            "{text}"
        );
        assert!(!text.contains("use '--"), "{text}");
        for flag in ["-L", "-L8080:x:80", "-R", "-D", "-A", "-X", "-Y", "-J"] {
            assert!(lacking_flag(flag).is_some(), "{flag}");
        }
        for flag in ["-v", "-x", "-", ""] {
            assert_eq!(lacking_flag(flag), None, "{flag}");
        }
    }

    #[test]
    fn serve_audit_max_bytes_has_the_config_range() {
        assert_eq!(audit_max_bytes("1024").unwrap(), Some(1024));
        assert_eq!(audit_max_bytes("1099511627776").unwrap(), Some(1 << 40));
        for outside in ["1023", "1099511627777", "18446744073709551615"] {
            let err = audit_max_bytes(outside).unwrap_err().to_string();
            assert!(
                err.contains("audit-max-bytes") && err.contains(outside),
                "{err}"
            );
        }
    }
}
