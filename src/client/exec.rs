//! `seashell exec DEST -- COMMAND...`: like `ssh host cmd`. The words are joined with spaces
//! and run by the remote console; our stdin is forwarded (EOF too); output goes to our stdout
//! and stderr as it arrives, or, with `--json`, into one JSON object at the end (the schema
//! of [`super::record`], as fan-out's). Returns the
//! remote status as a local exit code (128+N for signal N). When whoever reads our output
//! goes away (`seashell exec host -- cat log | head`), it ends quietly with 141, as a local
//! command killed by SIGPIPE would. With `-t` (and a terminal on our stdin) or `-tt`, the
//! command runs on a remote pseudo-terminal, as with `ssh -t`; `-t` without a terminal says
//! so and runs it on pipes.

use std::io::IsTerminal;
use std::time::Instant;

use super::ClientError;
use super::connect::{ConnectOptions, connect};
use super::console::{
    Ahead, Keyboard, Outcome, PtyCommand, RemoteConsole, Sink, StdinSource, exec_message,
    exec_pty_message,
};
use super::dest::Destination;
use super::record::{Captured, Record};
use super::terminal::{NO_TERMINAL_WARNING, PtyPlan, PtyRequest, local_term_type};
use crate::proto::ExitStatus;

/// The exit code when our stdout is a pipe whose reader has gone: 128 + SIGPIPE, what a
/// shell reports for a local command in the same place.
pub const SIGPIPE_STATUS: u8 = 141;

/// The exit code after `~.`, as ssh's.
pub const DISCONNECTED_STATUS: u8 = 255;

/// Runs one command remotely; returns the exit code seashell should exit with.
/// `name` is DEST as given (JSON's `host`).
pub async fn exec(
    name: &str,
    dest: Destination,
    opts: &ConnectOptions,
    words: &[String],
    json: bool,
    pty: PtyRequest,
) -> Result<u8, ClientError> {
    let started = Instant::now();
    let plan = PtyPlan::new(pty, std::io::stdin().is_terminal());
    if plan == PtyPlan::PipesNoTerminal && !opts.quiet {
        eprintln!("{NO_TERMINAL_WARNING}");
    }
    let host = dest.host.clone();
    let address = dest.host_port();
    let line = words.join(" ");
    let mut captured = json.then(Captured::default);
    let mut receive = |stream, data: &[u8]| {
        if let Some(captured) = &mut captured {
            captured.take(stream, data);
        }
        Ok(())
    };
    let mut sink = if json {
        Sink::Each(&mut receive)
    } else {
        Sink::Terminal
    };
    let keyboard = match plan {
        PtyPlan::Pipes | PtyPlan::PipesNoTerminal => None,
        PtyPlan::Interactive => Some(Keyboard::Terminal),
        PtyPlan::Forced => Some(Keyboard::Stream),
    };
    let command = keyboard.map(|keyboard| PtyCommand {
        line: &line,
        term: local_term_type(),
        keyboard,
        interrupt_on_pipes: false,
    });
    // The command goes with ClientAuth: the whole exec takes two round trips after TCP's.
    let ahead = match &command {
        None => exec_message(&line),
        Some(command) => exec_pty_message(command),
    };
    let connection = connect(dest, opts, Some(&ahead.as_message())).await?;
    let ahead = Ahead {
        message: ahead,
        to_terminal: matches!(sink, Sink::Terminal),
    };
    let mut console = RemoteConsole::start(connection.channel, Some(ahead)).await?;
    let ran = match &command {
        None => {
            console
                .run(&line, StdinSource::Forward, &mut sink, false)
                .await
        }
        Some(command) => console.run_pty(command).await,
    };
    let outcome = match ran {
        Ok(outcome) => outcome,
        // Whoever reads our output stopped (`... | head`): end quietly, like a local command
        // killed by SIGPIPE; closing the session ends the remote command.
        Err(ClientError::Local(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            console.close().await;
            return Ok(SIGPIPE_STATUS);
        }
        Err(err) => return Err(err),
    };
    let status = match outcome {
        Outcome::Exited(status) => {
            // A server that ended the session itself says so after the status.
            console.finish().await?;
            status
        }
        Outcome::GaveUp => {
            console.close().await;
            ExitStatus::Signal(2)
        }
        Outcome::Disconnected => {
            console.close().await;
            eprintln!("Connection to {host} closed.");
            return Ok(DISCONNECTED_STATUS);
        }
    };
    if let Some(captured) = &captured {
        let record = Record {
            host: name,
            address: &address,
            status: Some(status),
            output: Some(captured),
            duration: started.elapsed(),
            error: None,
        };
        println!("{}", record.to_json());
    }
    Ok(status.shell_code())
}
