//! The `seashell` binary: parse the command line, call the library, map errors to exit codes.
//! Client commands exit with the remote command's code (128+N for signal N); seashell's own
//! failures exit 255 with a one-line reason on stderr; local usage errors exit 1.
//! `audit verify` exits 0 for an intact log that ends in its final seal, 1 for a broken (or
//! unreadable) one or one that lacks a checkpoint its witness recorded, 2 for an intact log
//! that does not end in its final seal (live, crashed or cut).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use seashell::audit::{self, show::ShowOptions};
use seashell::cli::{
    AuditCommand, CaCommand, Cli, Command, ConfigCommand, CpArgs, ExecArgs, KnownHostsCommand,
    ServeArgs, TargetArgs, TrustArgs,
};
use seashell::client::connect::ConnectOptions;
use seashell::client::cp::{self, Plan};
use seashell::client::dest::Destination;
use seashell::client::target::{self, Target, Typed};
use seashell::client::terminal::PtyRequest;
use seashell::client::transfer::TransferOptions;
use seashell::client::{ClientError, exec, fanout, repl};
use seashell::config::{ConfigError, ConfigFile};
use seashell::server::{self, ServeError, ServerSettings};
use seashell::shown::shown;

mod cmd;

/// seashell's own failure.
const FAILURE: u8 = 255;
/// A local usage error.
const USAGE: u8 = 1;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if err.kind() == clap::error::ErrorKind::UnknownArgument => {
            let arg = match err.get(clap::error::ContextKind::InvalidArg) {
                Some(clap::error::ContextValue::String(arg)) => arg.clone(),
                _ => String::new(),
            };
            match seashell::cli::lacking_flag(&arg) {
                Some(why) => eprintln!("seashell: {arg}: {why}"),
                None => eprint!(
                    "{}",
                    seashell::cli::without_dash_dash_tip(&err.render().to_string())
                ),
            }
            return ExitCode::from(USAGE);
        }
        Err(err) => {
            let code = if err.use_stderr() { USAGE } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Keygen(args) => report(cmd::keys::keygen(&args), USAGE),
        Command::Fingerprint(args) => report(cmd::keys::fingerprint(&args), USAGE),
        Command::Ca(CaCommand::Sign(args)) => report(cmd::ca::sign(&args), USAGE),
        Command::Ca(CaCommand::Show { file }) => report(cmd::ca::show(&file), USAGE),
        Command::KnownHosts(KnownHostsCommand::Forget {
            host_port,
            known_hosts,
        }) => report(cmd::keys::forget(&host_port, known_hosts), USAGE),
        Command::Audit(AuditCommand::Verify {
            host_key,
            witness,
            files,
        }) => match audit::verify::run(&host_key, &files, witness.as_deref()) {
            Ok(verdict) => {
                println!("{verdict}");
                ExitCode::from(verdict.exit_code())
            }
            Err(err) => fail(&err, USAGE),
        },
        Command::Audit(AuditCommand::Show {
            files,
            key,
            since,
            grep,
            json,
        }) => {
            let options = ShowOptions {
                files,
                key,
                since,
                grep,
                json,
            };
            report(
                audit::show::run(&options, &mut std::io::stdout().lock()),
                USAGE,
            )
        }
        Command::Config(ConfigCommand::Show { host, config }) => {
            report(show_config(&host, config.as_deref()), USAGE)
        }
        Command::Serve(args) => serve(args),
        Command::Connect(args) => client(args.target.reach.trust.verbose, |rt| {
            let (dest, opts) = target(&args.target)?;
            let pty = if args.no_pty {
                PtyRequest::Never
            } else {
                PtyRequest::IfTerminal
            };
            repl::run(rt, dest, &opts, pty)
        }),
        Command::Exec(args) if args.fans_out() => fan_out(&args),
        Command::Exec(args) => client(args.reach.trust.verbose, |rt| {
            let name = args.dest.clone().unwrap_or_default();
            let (dest, opts) = resolve(
                &name,
                args.reach.port,
                args.reach.user.clone(),
                &args.reach.trust,
            )?;
            let pty = PtyRequest::from_flags(args.tty, args.no_pty);
            rt.block_on(exec::exec(
                &name,
                dest,
                &opts,
                &args.command,
                args.json,
                pty,
            ))
        }),
        Command::Cp(args) => copy(&args),
        Command::Agent(args) => {
            init_logging("info");
            report(cmd::agent::agent(&args), FAILURE)
        }
        Command::Add(args) => match cmd::agent::add(&args) {
            Ok(code) => ExitCode::from(code),
            Err(err) => fail(&err, FAILURE),
        },
        Command::Quickstart => match runtime() {
            Ok(rt) => {
                // The demo server shares the terminal with the REPL: only problems.
                init_logging("warn");
                match seashell::quickstart::run(&rt) {
                    Ok(code) => ExitCode::from(code),
                    Err(err) => fail(&err, FAILURE),
                }
            }
            Err(err) => fail(&err, FAILURE),
        },
    }
}

fn report<E: std::fmt::Display>(result: Result<(), E>, code: u8) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err, code),
    }
}

/// Prints `err` for the user. It can hold a peer's text (a server's reason, a name it sent)
/// or a file's, so it is [`shown`] escaped.
fn fail(err: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("seashell: {}", shown(&err.to_string()));
    ExitCode::from(code)
}

/// One worker per core, and at least two: the client writes a command's output with
/// blocking writes from its reader task (see `client::console`), so another worker must stay
/// free for Ctrl-C and for what we send while a terminal holds that write up.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.max(2))
        .enable_all()
        .build()
}

/// A client's log on stderr: nothing but errors by default (they are printed, not logged),
/// `-v` what it does (debug), `-vv` and more everything (trace); `RUST_LOG` wins over both.
/// Lines carry their level and no time, as ssh's `debug1:` lines.
fn client_logging(verbose: u8) {
    let level = match verbose {
        0 => "off",
        1 => "seashell=debug",
        _ => "seashell=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Logs to stderr at `default_level` unless `RUST_LOG` says otherwise.
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn serve(args: ServeArgs) -> ExitCode {
    init_logging("info");
    let result = (|| {
        let mut settings = ServerSettings::with_defaults()?;
        if let Some(path) = &args.config {
            ConfigFile::load(path)?.apply(path, &mut settings)?;
        }
        if let Some(listen) = args.listen {
            settings.listen = listen;
        }
        if let Some(path) = args.host_key {
            settings.host_key = path;
        }
        if let Some(path) = args.authorized_keys {
            settings.authorized_keys = path;
        }
        if let Some(path) = args.host_cert {
            settings.host_cert = Some(path);
        }
        settings.audit_log = args.audit_log.or(settings.audit_log);
        if let Some(bytes) = args.audit_max_bytes {
            settings.audit.max_bytes = bytes;
        }
        settings.audit.syslog = args.syslog.or(settings.audit.syslog);
        if settings.audit_log.is_none() && settings.audit.syslog.is_some() {
            return Err(StartError::SyslogWithoutLog);
        }
        let rt = runtime().map_err(ServeError::Signals)?;
        rt.block_on(async { server::bind(settings).await?.run().await })?;
        Ok::<(), StartError>(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err @ (StartError::Config(_) | StartError::SyslogWithoutLog)) => fail(&err, USAGE),
        Err(err) => fail(&err, FAILURE),
    }
}

/// Why `serve` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Key(#[from] seashell::keys::KeyError),
    #[error("syslog copies audit events: it needs an audit log (--audit-log or audit_log)")]
    SyslogWithoutLog,
}

/// Runs a client command with its log (`-v`) set up.
fn client(
    verbose: u8,
    run: impl FnOnce(&tokio::runtime::Runtime) -> Result<u8, ClientError>,
) -> ExitCode {
    client_logging(verbose);
    let result = runtime().map_err(ClientError::Local).and_then(|rt| {
        let code = run(&rt);
        // Don't wait for a blocked stdin reader: the session is over.
        rt.shutdown_background();
        code
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => fail(&err, FAILURE),
    }
}

fn copy(args: &CpArgs) -> ExitCode {
    client_logging(args.trust.verbose);
    let plan = match Plan::from_args(&args.paths) {
        Ok(plan) => plan,
        Err(err) => return fail(&err, err.exit_code()),
    };
    let (dest, opts) = match resolve(plan.host(), args.port, None, &args.trust) {
        Ok(resolved) => resolved,
        // As the other usage errors of cp's paths.
        Err(err @ (ClientError::Destination(_) | ClientError::Account(_))) => {
            return fail(&err, USAGE);
        }
        Err(err) => return fail(&err, FAILURE),
    };
    let options = TransferOptions {
        recursive: args.recursive,
        preserve_times: args.preserve_times,
        resume: args.resume,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(err) => return fail(&err, FAILURE),
    };
    // On a worker thread, next to the connection's reader and writer tasks: handing frames
    // between workers is cheaper than waking the main thread for each.
    let task = rt.spawn(async move { cp::copy(&plan, dest, &opts, options).await });
    let result = rt
        .block_on(task)
        .unwrap_or_else(|err| Err(ClientError::Local(std::io::Error::other(err)).into()));
    rt.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => fail(&err, err.exit_code()),
    }
}

fn target(args: &TargetArgs) -> Result<(Destination, ConnectOptions), ClientError> {
    let reach = &args.reach;
    resolve(&args.dest, reach.port, reach.user.clone(), &reach.trust)
}

/// `seashell exec -g GROUP -H HOST… COMMAND…`.
fn fan_out(args: &ExecArgs) -> ExitCode {
    let words = args.words();
    if words.is_empty() {
        eprintln!("seashell: exec -g/-H: no command to run (it goes after the options)");
        return ExitCode::from(USAGE);
    }
    let plan = match fan_out_plan(args, words.join(" ")) {
        Ok(plan) => plan,
        Err(
            err @ (ClientError::Destination(_)
            | ClientError::Account(_)
            | ClientError::Hosts(_)
            | ClientError::Config(_)),
        ) => return fail(&err, USAGE),
        Err(err) => return fail(&err, FAILURE),
    };
    client(args.reach.trust.verbose, |rt| {
        rt.block_on(fanout::run(plan))
    })
}

/// The hosts of `-g` and `-H`, each resolved as a DEST would be.
fn fan_out_plan(args: &ExecArgs, line: String) -> Result<fanout::Plan, ClientError> {
    let trust = &args.reach.trust;
    let config = target::load_config(trust.config.as_deref())?;
    let hosts = fanout::names(&config, &args.groups, &args.hosts)?
        .into_iter()
        .map(|name| {
            let typed = typed(&name, args.reach.port, args.reach.user.clone(), trust);
            let target = Target::resolve(&typed, &config)?;
            let mut opts = target.connect_options();
            opts.ask_host_key = false;
            Ok(fanout::Host {
                dest: target.destination(),
                opts,
                name,
            })
        })
        .collect::<Result<_, ClientError>>()?;
    Ok(fanout::Plan {
        hosts,
        line,
        parallel: args.parallel.unwrap_or(fanout::DEFAULT_PARALLEL),
        timeout: args.timeout.map(Duration::from_secs),
        json: args.json,
        prefix: !args.no_prefix,
        quiet: trust.quiet,
    })
}

/// DEST and the flags, resolved against the client configuration.
fn resolve(
    dest: &str,
    port: Option<u16>,
    user: Option<String>,
    trust: &TrustArgs,
) -> Result<(Destination, ConnectOptions), ClientError> {
    let config = target::load_config(trust.config.as_deref())?;
    let target = Target::resolve(&typed(dest, port, user, trust), &config)?;
    Ok((target.destination(), target.connect_options()))
}

/// What was typed for DEST (or one host of a fan-out).
fn typed(dest: &str, port: Option<u16>, user: Option<String>, trust: &TrustArgs) -> Typed {
    Typed {
        dest: dest.to_owned(),
        port,
        user,
        identity: trust.identity.clone(),
        known_hosts: trust.known_hosts.clone(),
        host_fingerprint: trust.host_fingerprint.clone(),
        accept_new: trust.accept_new,
        passphrase_file: trust.passphrase_file.clone(),
        quiet: trust.quiet,
    }
}

/// `seashell config show HOST`.
fn show_config(host: &str, config: Option<&std::path::Path>) -> Result<(), ClientError> {
    let config = target::load_config(config)?;
    let typed = Typed {
        dest: host.to_owned(),
        ..Typed::default()
    };
    print!("{}", Target::resolve(&typed, &config)?.describe());
    Ok(())
}
