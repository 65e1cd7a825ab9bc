//! A read timeout that costs one timer per connection, not one per message.
//!
//! `tokio::time::timeout` around every read puts a timer in the runtime's wheel and takes it
//! out again for every message (3–5 % of the load tool's CPU with thousands of clients). An
//! [`Idle`] keeps one timer, set `timeout` after the last message as it was when the timer was
//! last set, and moves it on only when it fires: most messages touch no timer at all, and the
//! timeout still fires exactly `timeout` after the last message.

use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep, sleep_until};

/// Watches for `timeout` without a message.
#[derive(Debug)]
pub(crate) struct Idle {
    timeout: Duration,
    /// When a message last arrived.
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Idle {
    /// Starts watching now.
    pub(crate) fn new(timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            timeout,
            last: now,
            timer: Box::pin(sleep_until(now + timeout)),
        }
    }

    /// The timeout watched for.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A message arrived.
    pub(crate) fn heard(&mut self) {
        self.last = Instant::now();
    }

    /// Completes once `timeout` has passed since the last message. Cancel-safe.
    pub(crate) async fn expired(&mut self) {
        loop {
            (&mut self.timer).await;
            let due = self.last + self.timeout;
            if due <= self.timer.deadline() {
                return;
            }
            self.timer.as_mut().reset(due);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn it_fires_exactly_the_timeout_after_the_last_message() {
        let start = Instant::now();
        let mut idle = Idle::new(Duration::from_secs(10));
        // Messages at 4 s and 9 s push it to 19 s.
        for at in [4, 9] {
            tokio::time::sleep_until(start + Duration::from_secs(at)).await;
            idle.heard();
        }
        idle.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(19));
        // Silence from the start: 10 s.
        let start = Instant::now();
        let mut idle = Idle::new(Duration::from_secs(10));
        idle.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
}
