//! Logs of the mount process: stderr in the foreground, a file (or nothing) in the background, where
//! stderr is a pipe to the `ferrum mount` that started it and goes away with it.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

use super::CliError;

pub enum Sink<'a> {
    Stderr,
    File(&'a Path),
    Discard,
}

pub fn init(level: &str, sink: Sink<'_>) -> Result<(), CliError> {
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(env) => EnvFilter::try_new(&env).map_err(|e| format!("RUST_LOG {env:?}: {e}"))?,
        Err(_) => EnvFilter::try_new(level).map_err(|e| format!("--log {level:?}: {e}"))?,
    };
    let (writer, ansi) = match sink {
        Sink::Stderr => (BoxMakeWriter::new(std::io::stderr), std::io::IsTerminal::is_terminal(&std::io::stderr())),
        Sink::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            (BoxMakeWriter::new(Mutex::new(file)), false)
        }
        Sink::Discard => (BoxMakeWriter::new(std::io::sink), false),
    };
    let _already = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi).try_init();
    Ok(())
}
