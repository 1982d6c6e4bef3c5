//! `seashell exec DEST -- COMMAND...`: like `ssh host cmd`. The words are joined with spaces
//! and run by the remote console; our stdin is forwarded (EOF too); output goes to our stdout
//! and stderr as it arrives, or, with `--json`, into one JSON object at the end. Returns the
//! remote status as a local exit code (128+N for signal N).

use std::time::Instant;

use super::ClientError;
use super::connect::{ConnectOptions, connect};
use super::console::{Outcome, RemoteConsole, Sink, StdinSource};
use super::dest::Destination;
use crate::proto::ExitStatus;

/// Runs one command remotely; returns the exit code seashell should exit with.
pub async fn exec(
    dest: Destination,
    opts: &ConnectOptions,
    words: &[String],
    json: bool,
) -> Result<u8, ClientError> {
    let started = Instant::now();
    let connection = connect(dest, opts).await?;
    let mut console = RemoteConsole::start(connection.channel).await?;
    let line = words.join(" ");
    let mut sink = if json {
        Sink::Collect {
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    } else {
        Sink::Terminal
    };
    let outcome = console
        .run(&line, StdinSource::Forward, &mut sink, false)
        .await?;
    console.close().await;
    let status = match outcome {
        Outcome::Exited(status) => status,
        Outcome::GaveUp => ExitStatus::Signal(2),
    };
    if let Sink::Collect { stdout, stderr } = sink {
        let signal = match status {
            ExitStatus::Signal(n) => serde_json::Value::from(n),
            ExitStatus::Code(_) => serde_json::Value::Null,
        };
        let report = serde_json::json!({
            "stdout": String::from_utf8_lossy(&stdout),
            "stderr": String::from_utf8_lossy(&stderr),
            "exit": status.shell_code(),
            "signal": signal,
            "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        println!("{report}");
    }
    Ok(status.shell_code())
}
