//! The server's keepalive: a Ping to the client every interval while its session's output
//! task is waiting, streaming a command's output or sending a file, so that the console's
//! silence check (no message for three intervals) only ever fires on a client that stopped
//! answering. One clock per session, whichever of those is going on.

use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::time::Instant;

use crate::proto::Message;
use crate::transport::{SecureWriter, TransportError};

/// When the next Ping is due, and how many were sent.
pub struct Keepalive {
    period: Duration,
    next: Instant,
    sent: u64,
}

impl Keepalive {
    /// The first Ping is due one `period` from now.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            next: after(period),
            sent: 0,
        }
    }

    /// Waits until a Ping is due and returns it (for a `select!` beside other work).
    pub async fn due(&mut self) -> Message<'static> {
        tokio::time::sleep_until(self.next).await;
        self.ping()
    }

    /// Sends a Ping if one is due (between the frames of a long download).
    pub async fn send_if_due<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut SecureWriter<W>,
    ) -> Result<(), TransportError> {
        if Instant::now() >= self.next {
            writer.send(&self.ping()).await?;
        }
        Ok(())
    }

    fn ping(&mut self) -> Message<'static> {
        self.next = after(self.period);
        self.sent += 1;
        Message::Ping(self.sent)
    }
}

/// `period` from now, or as far as the clock goes: a huge interval is no keepalive.
fn after(period: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(period)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
