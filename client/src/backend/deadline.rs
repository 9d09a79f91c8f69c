//! A deadline for every cluster call made inside a future, set by a caller that makes several calls as
//! one unit: the write-back, whose attempts and retries must all end one op timeout after it began.
//! Task-local, so it needs no parameter on every [`MetaBackend`](super::MetaBackend) and
//! [`DataBackend`](super::DataBackend) method; tasks spawned inside do not inherit it (they get the
//! backend's own per-call bound).

use std::future::Future;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `f` with every cluster call inside it answered by `deadline` (or by an earlier one already set).
pub async fn within<F: Future>(deadline: Instant, f: F) -> F::Output {
    let deadline = current().map_or(deadline, |outer| outer.min(deadline));
    DEADLINE.scope(deadline, f).await
}

/// The deadline an enclosing [`within`] set, if any.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_earliest_enclosing_deadline_wins() {
        assert_eq!(current(), None);
        let soon = Instant::now() + Duration::from_secs(1);
        let later = soon + Duration::from_secs(5);
        within(soon, async {
            assert_eq!(current(), Some(soon));
            within(later, async { assert_eq!(current(), Some(soon)) }).await;
        })
        .await;
        within(later, async { within(soon, async { assert_eq!(current(), Some(soon)) }).await }).await;
    }
}
