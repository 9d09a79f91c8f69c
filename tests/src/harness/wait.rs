//! A fixed sleep is either too short (flaky on a loaded CI box) or too long (slow everywhere). These helpers poll a
//! condition every ~50 ms until a deadline, return as soon as it holds, and on timeout panic with what was awaited
//! and the last thing observed, so a failure explains itself.

use std::fmt::Debug;
use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Polling interval.
pub const POLL: Duration = Duration::from_millis(50);

/// What a polled closure may return: `Option<T>` (`None` = not yet), `Result<T, E>` (`Err` = not yet; the last
/// error is reported on timeout) or `bool`.
pub trait Check {
    type Output;
    /// `Ok(value)` when the condition holds; otherwise the observation to report if it never does.
    fn check(self) -> Result<Self::Output, Option<String>>;
}

impl<T> Check for Option<T> {
    type Output = T;
    fn check(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Debug> Check for Result<T, E> {
    type Output = T;
    fn check(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(format!("{e:?}")))
    }
}

impl Check for bool {
    type Output = ();
    fn check(self) -> Result<(), Option<String>> {
        if self {
            Ok(())
        } else {
            Err(None)
        }
    }
}

/// Poll `f` every [`POLL`] until it succeeds, and return its value; panic after `timeout`.
///
/// `f` is always called at least once, and once more at the deadline. It must not block for long itself: a hung
/// call cannot be interrupted (use [`wait_for_async`] for network round trips).
pub fn wait_for<R: Check>(what: &str, timeout: Duration, mut f: impl FnMut() -> R) -> R::Output {
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match f().check() {
            Ok(v) => return v,
            Err(observation) => observation,
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            timed_out(what, timeout, attempts, last);
        }
        std::thread::sleep(POLL.min(timeout.saturating_sub(elapsed)));
    }
}

/// Async [`wait_for`]: poll the future returned by `f` every [`POLL`] until it succeeds; panic after `timeout`.
///
/// Each attempt is itself bounded by the time left (at least one [`POLL`]), so an RPC that hangs against a dead
/// node cannot stall the test past its deadline.
pub async fn wait_for_async<R, Fut, F>(what: &str, timeout: Duration, mut f: F) -> R::Output
where
    R: Check,
    Fut: Future<Output = R>,
    F: FnMut() -> Fut,
{
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let budget = timeout.saturating_sub(start.elapsed()).max(POLL);
        let last = match tokio::time::timeout(budget, f()).await {
            Ok(r) => match r.check() {
                Ok(v) => return v,
                Err(observation) => observation,
            },
            Err(_) => Some(format!("attempt still pending after {budget:?}")),
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            timed_out(what, timeout, attempts, last);
        }
        tokio::time::sleep(POLL.min(timeout.saturating_sub(elapsed))).await;
    }
}

#[track_caller]
fn timed_out(what: &str, timeout: Duration, attempts: u32, last: Option<String>) -> ! {
    match last {
        Some(last) => panic!("timed out after {timeout:?} waiting for {what} ({attempts} attempts); last: {last}"),
        None => panic!("timed out after {timeout:?} waiting for {what} ({attempts} attempts)"),
    }
}

/// Whether a TCP connection to `addr` succeeds right now.
pub fn is_port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Wait until something accepts TCP connections on `addr`. Prefer `Proc::wait_port_open`, which also fails fast
/// (with the log) when the process dies instead of waiting out the timeout.
pub fn wait_port_open(addr: SocketAddr, timeout: Duration) {
    wait_for(&format!("{addr} to accept connections"), timeout, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map(drop)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn returns_the_value_as_soon_as_the_condition_holds() {
        let mut n = 0;
        let v = wait_for("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(v, 3);
    }

    #[test]
    #[should_panic(expected = "waiting for the impossible (")]
    fn panics_naming_what_on_timeout() {
        wait_for("the impossible", Duration::from_millis(120), || false);
    }

    #[test]
    #[should_panic(expected = "last: \"still 7\"")]
    fn reports_the_last_error() {
        wait_for("a result", Duration::from_millis(120), || Err::<(), _>("still 7"));
    }

    #[tokio::test]
    async fn async_version_bounds_a_hung_attempt() {
        let start = Instant::now();
        let hung = wait_for_async("a hung future", Duration::from_millis(200), std::future::pending::<Option<()>>);
        // Run in a task so the expected panic comes back as a JoinError.
        let panic = tokio::spawn(hung).await.expect_err("must time out").into_panic();
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
        assert!(msg.contains("waiting for a hung future") && msg.contains("still pending"), "{msg}");
    }

    #[test]
    fn port_open_after_bind() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        wait_port_open(l.local_addr().unwrap(), Duration::from_secs(2));
    }
}
