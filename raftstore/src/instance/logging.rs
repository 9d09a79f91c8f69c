//! Logs to stderr through `tracing`, each line tagged with the instance's role.

use std::io::IsTerminal;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::EnvFilter;

use super::error::{ConfigError, InstanceError};
use super::role::Role;

/// Installs the global subscriber: `RUST_LOG` if set, else `level` (`info`, or any RUST_LOG-style
/// directive such as `info,ferrum_raftstore=debug`). Calling it again is a no-op, so tests and
/// `main` may both call it.
pub fn init_tracing(role: Role, level: &str) -> Result<(), InstanceError> {
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        // An invalid RUST_LOG is refused rather than silently replaced: the operator asked for it.
        Ok(env) => parse_filter(&env, "RUST_LOG")?,
        Err(_) => parse_filter(level, "--log / `log`")?,
    };
    let _already_installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_timer(TimeAndRole(role))
        .try_init();
    Ok(())
}

/// Checks a filter directive without installing anything, so config loading can refuse it early.
pub(crate) fn check_filter(value: &str, origin: &'static str) -> Result<(), ConfigError> {
    parse_filter(value, origin).map(drop)
}

fn parse_filter(value: &str, origin: &'static str) -> Result<EnvFilter, ConfigError> {
    EnvFilter::try_new(value).map_err(|err| ConfigError::LogFilter {
        origin,
        value: value.to_string(),
        reason: err.to_string(),
    })
}

/// Writes `<timestamp> <role>`: the role goes right after the timestamp, which keeps the lines of
/// several instances' logs sortable by time when merged. Riding on the timer saves re-implementing the
/// whole line format, and unlike a span it also tags events from threads that never entered one.
struct TimeAndRole(Role);

impl FormatTime for TimeAndRole {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        SystemTime.format_time(w)?;
        write!(w, " {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_idempotent() {
        // RUST_LOG may be set by whoever runs the tests; only a malformed one would fail here.
        if std::env::var("RUST_LOG").is_err() {
            init_tracing(Role::Other("test"), "info").expect("first init");
            init_tracing(Role::Other("test"), "debug").expect("second init is a no-op");
        }
    }

    #[test]
    fn bad_filter_is_refused() {
        assert!(check_filter("info,ferrum_raftstore=debug", "--log").is_ok());
        let msg = check_filter("=[[[", "--log").unwrap_err().to_string();
        assert!(msg.contains("--log") && !msg.contains('\n'), "{msg}");
    }

    #[test]
    fn timer_tags_the_role() {
        let mut line = String::new();
        TimeAndRole(Role::Metanode).format_time(&mut Writer::new(&mut line)).expect("format");
        assert!(line.ends_with(" metanode"), "{line}");
    }
}
