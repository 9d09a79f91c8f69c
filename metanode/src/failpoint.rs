//! Named points in the coordinator where a test makes it stop dead, as if its process crashed right
//! there, to show that recovery repairs whatever was left half done.
//!
//! The binary reads `FERRUM_METANODE_FAILPOINT=<name>` and aborts the process at that point. With
//! `FERRUM_METANODE_FAILPOINT_ONCE=<path>` as well, only the first process to get there aborts (it
//! creates `<path>` first; every instance of a test cluster shares it), so that retries and restarts
//! that follow run normally. In-process tests use [`Failpoints::stop_at`], which makes the coordinator
//! return at once, leaving its partial state behind. Unset, a check is one comparison of an `Option`.

use ferrum_proto::ErrorCode;

pub const ENV: &str = "FERRUM_METANODE_FAILPOINT";
pub const ENV_ONCE: &str = "FERRUM_METANODE_FAILPOINT_ONCE";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `std::process::abort()`: no destructor, no reply, like `kill -9`.
    Abort,
    /// Abort unless the marker file exists; create it first.
    AbortOnce(std::path::PathBuf),
    /// Return `Unavailable` from the operation without any cleanup.
    Stop,
}

#[derive(Clone, Debug, Default)]
pub struct Failpoints {
    point: Option<(String, Action)>,
}

impl Failpoints {
    pub fn none() -> Failpoints {
        Failpoints::default()
    }

    pub fn from_env() -> Failpoints {
        match std::env::var(ENV) {
            Ok(name) if !name.is_empty() => {
                let action = match std::env::var_os(ENV_ONCE) {
                    Some(path) if !path.is_empty() => Action::AbortOnce(path.into()),
                    _ => Action::Abort,
                };
                Failpoints { point: Some((name, action)) }
            }
            _ => Failpoints::none(),
        }
    }

    pub fn stop_at(name: &str) -> Failpoints {
        Failpoints { point: Some((name.to_string(), Action::Stop)) }
    }

    pub fn hit(&self, name: &str) -> Result<(), ErrorCode> {
        match &self.point {
            Some((p, action)) if p == name => match action {
                Action::AbortOnce(marker) => {
                    if std::fs::OpenOptions::new().write(true).create_new(true).open(marker).is_ok() {
                        abort(name)
                    }
                    Ok(())
                }
                Action::Abort => abort(name),
                Action::Stop => Err(ErrorCode::Unavailable(format!("stopped at failpoint {name}"))),
            },
            _ => Ok(()),
        }
    }
}

fn abort(name: &str) -> ! {
    tracing::error!(failpoint = name, "failpoint reached: aborting the process");
    eprintln!("ferrum-metanode: failpoint {name} reached: aborting");
    std::process::abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_only_at_the_named_point() {
        let f = Failpoints::stop_at("rename.after_decide");
        f.hit("rename.after_prepare_src").unwrap();
        assert!(matches!(f.hit("rename.after_decide"), Err(ErrorCode::Unavailable(_))));
        Failpoints::none().hit("rename.after_decide").unwrap();
    }
}
