//! Graceful shutdown: one token, cancelled by SIGTERM/SIGINT or by code, that every server loop watches.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use super::error::InstanceError;

/// Cheap to clone; all clones share one token.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A shutdown only `trigger` can start (tests, embedded instances).
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A shutdown that SIGTERM or SIGINT also starts. Must be called inside a tokio runtime.
    ///
    /// The handlers are registered before returning, so a signal sent right after start-up is not
    /// lost to the default action (which would kill the process without a clean shutdown).
    pub fn install_signal_handlers() -> Result<Shutdown, InstanceError> {
        let mut term = signal(SignalKind::terminate()).map_err(InstanceError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(InstanceError::Signals)?;
        let shutdown = Shutdown::new();
        let token = shutdown.token.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                // Shut down by code: stop listening, nothing to log.
                _ = token.cancelled() => return,
            };
            tracing::info!(signal = name, "received {name}, shutting down");
            token.cancel();
        });
        Ok(shutdown)
    }

    /// The underlying token, for `select!` loops and child tokens.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Completes once shutdown has started (at once if it already has).
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    pub fn trigger(&self) {
        self.token.cancel()
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn trigger_wakes_every_clone() {
        let shutdown = Shutdown::new();
        let waiter = shutdown.clone();
        let task = tokio::spawn(async move { waiter.cancelled().await });
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("woken").expect("task");
        assert!(shutdown.token().is_cancelled());
    }

    #[tokio::test]
    async fn sigterm_triggers_shutdown() {
        let shutdown = Shutdown::install_signal_handlers().expect("handlers");
        // SAFETY: kill(2) with our own pid; the handler just installed turns SIGTERM into a
        // message, so the test process is not terminated.
        let rc = unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        assert_eq!(rc, 0);
        tokio::time::timeout(Duration::from_secs(5), shutdown.cancelled()).await.expect("SIGTERM cancels the token");
    }
}
