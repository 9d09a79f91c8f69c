//! What every service's thin `main.rs` does around its real work: abort on panic, build the tokio
//! runtime, and turn an error into one line on stderr and exit code 1.
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     let cli = Cli::parse();
//!     instance::run(Role::Master, || async move {
//!         let (config, master) = instance::load::<MasterSection>(&cli.instance, "master")?;
//!         instance::init_tracing(Role::Master, &config.log)?;
//!         Node::start(config, master).await?.wait().await?;
//!         Ok(())
//!     })
//! }
//! ```

use std::backtrace::BacktraceStatus;
use std::error::Error;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use super::role::Role;

/// Boxed error of a service's main future; any error type converts into it with `?`.
pub type MainError = Box<dyn Error + Send + Sync>;

/// How long, after `f` returns, tasks still running (including `spawn_blocking` ones) get before the
/// process exits anyway; a stuck RocksDB call must not turn a clean stop into a hang.
const RUNTIME_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Runs `f` on a multi-thread tokio runtime and maps its outcome to the process exit code.
pub fn run<F, Fut>(role: Role, f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), MainError>>,
{
    install_panic_hook(role);
    run_on_runtime(role, f)
}

/// A panic in any task or thread aborts the whole process: tokio would otherwise catch it, and the
/// instance would keep answering on its ports with part of itself dead. Dying is easier to notice
/// and to recover from (Garage does the same).
fn install_panic_hook(role: Role) {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if tracing::dispatcher::has_been_set() {
            // Captured only if RUST_BACKTRACE asks for it, as the default hook does.
            let backtrace = std::backtrace::Backtrace::capture();
            match backtrace.status() {
                BacktraceStatus::Captured => {
                    tracing::error!("{info}; aborting the process\n{backtrace}")
                }
                _ => tracing::error!("{info}; aborting the process"),
            }
        } else {
            // Logging is not up yet; the default hook prints the message (and backtrace if asked).
            default_hook(info);
            eprintln!("ferrum-{role}: error: panicked, aborting the process");
        }
        std::process::abort();
    }));
}

/// Everything in `run` but the process-wide panic hook, so tests can call it.
fn run_on_runtime<F, Fut>(role: Role, f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), MainError>>,
{
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name(format!("ferrum-{role}")).build() {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("{}", error_line(role, &err));
                return ExitCode::FAILURE;
            }
        };
    let result = runtime.block_on(f());
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_GRACE);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", error_line(role, &*err));
            ExitCode::FAILURE
        }
    }
}

/// `ferrum-<role>: error: <message>`.
fn error_line(role: Role, err: &(dyn Error + 'static)) -> String {
    format!("ferrum-{role}: error: {}", one_line(err))
}

/// The error and its causes, `: `-joined on one line. A cause already spelled out in its parent's
/// message (as our `{source}` formats do) is not repeated.
fn one_line(err: &(dyn Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(source) = cause {
        let text = source.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = source.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::InstanceError;

    #[test]
    fn ok_exits_zero_and_runs_on_a_multi_thread_runtime() {
        let code = run_on_runtime(Role::Other("test"), || async {
            let flavor = tokio::runtime::Handle::current().runtime_flavor();
            assert_eq!(flavor, tokio::runtime::RuntimeFlavor::MultiThread);
            Ok(())
        });
        assert_eq!(code, ExitCode::SUCCESS);
    }

    #[test]
    fn error_exits_one() {
        let code = run_on_runtime(Role::Other("test"), || async { Err("boom".into()) });
        assert_eq!(code, ExitCode::FAILURE);
    }

    #[test]
    fn error_line_is_one_line_with_causes_once() {
        let port = InstanceError::Bind {
            addr: "127.0.0.1:1".parse().expect("addr"),
            what: "rpc".to_string(),
            source: std::io::Error::other("boom"),
        };
        assert_eq!(
            error_line(Role::Datanode, &port),
            "ferrum-datanode: error: cannot listen on 127.0.0.1:1 (rpc): boom"
        );

        #[derive(Debug, thiserror::Error)]
        #[error("starting the master failed")]
        struct Wrapper(#[source] std::io::Error);
        let wrapped = Wrapper(std::io::Error::other("disk\non fire"));
        assert_eq!(
            error_line(Role::Master, &wrapped),
            "ferrum-master: error: starting the master failed: disk on fire"
        );
    }
}
