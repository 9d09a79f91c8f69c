//! Calling a replicated service — the master group, or the replicas of one partition — when any of its
//! addresses may answer and only the leader serves: follow `NotLeader{leader}` hints, move on from dead
//! or leaderless replicas, retry retryable errors with bounded exponential backoff, and remember the
//! leader for the next call. A replica that does not host the partition (yet, or any more: it is
//! being created or was moved away) is passed over; only when every address says so does the call fail.
//!
//! Retries resend the same request, so a mutating request must be idempotent on the server (Ferrum's
//! mutating messages carry an `OpId` for exactly this).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::msg::Rpc;
use crate::rpc::{ConnPool, RpcError};

/// How long and how often a [`LeaderClient`] keeps trying.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Give up (returning the last error) once this much time has passed since the call started.
    pub deadline: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Long enough to ride out a leader election (election timeouts are ~1 s), short enough that a
        // dead cluster is reported within seconds.
        RetryPolicy {
            deadline: Duration::from_secs(15),
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
        }
    }
}

#[derive(Clone)]
pub struct LeaderClient {
    pool: ConnPool,
    policy: RetryPolicy,
    state: Arc<Mutex<State>>,
}

struct State {
    addrs: Vec<String>,
    /// Index into `addrs` of the replica to try first (the last known leader).
    preferred: usize,
}

impl LeaderClient {
    /// `addrs` must not be empty; duplicates are ignored.
    pub fn new(pool: ConnPool, addrs: Vec<String>, policy: RetryPolicy) -> LeaderClient {
        let mut uniq: Vec<String> = Vec::new();
        for a in addrs {
            if !uniq.contains(&a) {
                uniq.push(a);
            }
        }
        LeaderClient { pool, policy, state: Arc::new(Mutex::new(State { addrs: uniq, preferred: 0 })) }
    }

    pub fn addrs(&self) -> Vec<String> {
        self.state.lock().expect("leader state").addrs.clone()
    }

    /// The address that answered last (or was named leader), if any call has succeeded or been redirected.
    pub fn leader(&self) -> Option<String> {
        let s = self.state.lock().expect("leader state");
        s.addrs.get(s.preferred).cloned()
    }

    /// Replaces the replica set (e.g. after a newer volume view), keeping the leader if it is still in it.
    pub fn set_addrs(&self, addrs: Vec<String>) {
        let mut s = self.state.lock().expect("leader state");
        let leader = s.addrs.get(s.preferred).cloned();
        s.addrs = addrs;
        s.preferred = leader.and_then(|l| s.addrs.iter().position(|a| *a == l)).unwrap_or(0);
    }

    pub async fn call<R: Rpc>(&self, req: &R) -> Result<R::Response, RpcError> {
        let (resp, _) = self.call_with_data(req, Bytes::new()).await?;
        Ok(resp)
    }

    pub async fn call_with_data<R: Rpc>(&self, req: &R, data: Bytes) -> Result<(R::Response, Bytes), RpcError> {
        let deadline = tokio::time::Instant::now() + self.policy.deadline;
        self.retry(req, data, deadline, false).await
    }

    /// [`LeaderClient::call`], but giving up at `deadline` instead of the policy's, and cutting the
    /// attempt in flight there (returning [`RpcError::Timeout`]): the caller is promised an answer by
    /// then, even from a leader that accepted the request but cannot commit it (its majority is gone).
    pub async fn call_until<R: Rpc>(&self, req: &R, deadline: tokio::time::Instant) -> Result<R::Response, RpcError> {
        let (resp, _) = self.call_with_data_until(req, Bytes::new(), deadline).await?;
        Ok(resp)
    }

    /// [`LeaderClient::call_with_data`] bounded by `deadline` (see [`LeaderClient::call_until`]).
    pub async fn call_with_data_until<R: Rpc>(
        &self,
        req: &R,
        data: Bytes,
        deadline: tokio::time::Instant,
    ) -> Result<(R::Response, Bytes), RpcError> {
        self.retry(req, data, deadline, true).await
    }

    async fn retry<R: Rpc>(
        &self,
        req: &R,
        data: Bytes,
        deadline: tokio::time::Instant,
        cut_at_deadline: bool,
    ) -> Result<(R::Response, Bytes), RpcError> {
        let mut backoff = self.policy.initial_backoff;
        let mut redirects_in_a_row = 0u32;
        let mut not_hosting: Vec<String> = Vec::new();
        let mut last = None;
        loop {
            if cut_at_deadline && tokio::time::Instant::now() >= deadline {
                // Out of time: sending now would only leave work behind on a server.
                return Err(last.unwrap_or(RpcError::Timeout));
            }
            let addr = self.current();
            let attempt = async {
                let client = self.pool.get(&addr).await?;
                client.call_with_data(req, data.clone()).await
            };
            let result = if cut_at_deadline {
                tokio::time::timeout_at(deadline, attempt).await.unwrap_or(Err(RpcError::Timeout))
            } else {
                attempt.await
            };
            let err = match result {
                Ok(ok) => return Ok(ok),
                Err(e) => e,
            };
            if let RpcError::Remote(ErrorCode::NotLeader { leader: Some(hint) }) = &err {
                if redirects_in_a_row < 3 {
                    // Follow the hint at once; a few hops in a row without success means hints are
                    // stale (an election is under way), so fall through to backing off.
                    redirects_in_a_row += 1;
                    self.prefer(&hint.addr);
                    last = Some(err);
                    continue;
                }
            }
            if let RpcError::Remote(ErrorCode::PartitionNotFound(_) | ErrorCode::GroupNotFound(_)) = &err {
                // This replica does not host it (yet, or any more): another may.
                if !not_hosting.contains(&addr) {
                    not_hosting.push(addr.clone());
                }
                if not_hosting.len() >= self.state.lock().expect("leader state").addrs.len() {
                    return Err(err);
                }
            } else if !err.is_retryable() {
                return Err(err);
            }
            redirects_in_a_row = 0;
            self.skip(&addr);
            let now = tokio::time::Instant::now();
            if cut_at_deadline {
                // Retries go on until the deadline itself, not a backoff short of it: the caller was
                // promised that much patience.
                tokio::time::sleep_until(deadline.min(now + backoff)).await;
            } else {
                if now + backoff > deadline {
                    return Err(err);
                }
                tokio::time::sleep(backoff).await;
            }
            last = Some(err);
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }

    fn current(&self) -> String {
        let s = self.state.lock().expect("leader state");
        s.addrs[s.preferred % s.addrs.len()].clone()
    }

    fn prefer(&self, addr: &str) {
        let mut s = self.state.lock().expect("leader state");
        match s.addrs.iter().position(|a| a == addr) {
            Some(i) => s.preferred = i,
            None => {
                // A leader we did not know of (e.g. a master added since we were configured).
                s.addrs.push(addr.to_string());
                s.preferred = s.addrs.len() - 1;
            }
        }
    }

    fn skip(&self, failed: &str) {
        let mut s = self.state.lock().expect("leader state");
        if s.addrs.get(s.preferred).map(String::as_str) == Some(failed) {
            s.preferred = (s.preferred + 1) % s.addrs.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::error::LeaderHint;
    use crate::msg::hello::Hello;
    use crate::rpc::{handler_fn, serve, ClientConfig, Incoming, Outgoing, ServerConfig};
    use crate::NodeId;

    /// A server that answers HELLO-like requests as leader or as a follower pointing at `leader`.
    async fn server(leader: Option<String>, served: Arc<AtomicU32>, stop: CancellationToken) -> String {
        serve_as(
            leader.map(|a| ErrorCode::NotLeader { leader: Some(LeaderHint { node: NodeId(9), addr: a }) }),
            served,
            stop,
        )
        .await
    }

    /// A server that fails every request with `error`, or serves it (`None`).
    async fn serve_as(error: Option<ErrorCode>, served: Arc<AtomicU32>, stop: CancellationToken) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = handler_fn(move |_req: Incoming| {
            let (error, served) = (error.clone(), served.clone());
            async move {
                match error {
                    Some(e) => Err(e),
                    None => {
                        served.fetch_add(1, Ordering::SeqCst);
                        Ok(Outgoing::msg(&crate::msg::hello::HelloAck { version: 1, server: "leader".into() }))
                    }
                }
            }
        });
        tokio::spawn(serve(l, Arc::new(h), ServerConfig::default(), stop));
        addr
    }

    fn policy(deadline_ms: u64) -> RetryPolicy {
        RetryPolicy {
            deadline: Duration::from_millis(deadline_ms),
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        }
    }

    #[tokio::test]
    async fn follows_hints_and_skips_dead_replicas() {
        let stop = CancellationToken::new();
        let served = Arc::new(AtomicU32::new(0));
        let leader = server(None, served.clone(), stop.clone()).await;
        let follower = server(Some(leader.clone()), Arc::new(AtomicU32::new(0)), stop.clone()).await;
        // A dead address first: nothing listens there.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let c = LeaderClient::new(ConnPool::new(ClientConfig::default()), vec![dead, follower], policy(5_000));
        let ack = c.call(&Hello::ours()).await.unwrap();
        assert_eq!(ack.server, "leader");
        assert_eq!(c.leader().as_deref(), Some(leader.as_str()), "the leader is remembered");
        c.call(&Hello::ours()).await.unwrap();
        assert_eq!(served.load(Ordering::SeqCst), 2);
        stop.cancel();
    }

    #[tokio::test]
    async fn passes_over_a_replica_that_does_not_host_the_partition() {
        let stop = CancellationToken::new();
        let served = Arc::new(AtomicU32::new(0));
        let missing = || Some(ErrorCode::PartitionNotFound(crate::PartitionId(6)));
        let absent = serve_as(missing(), Arc::new(AtomicU32::new(0)), stop.clone()).await;
        let leaderless =
            serve_as(Some(ErrorCode::NotLeader { leader: None }), Arc::new(AtomicU32::new(0)), stop.clone());
        let leaderless = leaderless.await;
        let leader = server(None, served.clone(), stop.clone()).await;
        let c =
            LeaderClient::new(ConnPool::new(ClientConfig::default()), vec![leaderless, absent, leader], policy(5_000));
        c.call(&Hello::ours()).await.unwrap();
        assert_eq!(served.load(Ordering::SeqCst), 1);

        // When no address hosts it, the call fails at once with that error instead of retrying.
        let gone = serve_as(missing(), Arc::new(AtomicU32::new(0)), stop.clone()).await;
        let also_gone = serve_as(missing(), Arc::new(AtomicU32::new(0)), stop.clone()).await;
        let c = LeaderClient::new(ConnPool::new(ClientConfig::default()), vec![gone, also_gone], policy(60_000));
        let t = std::time::Instant::now();
        let err = c.call(&Hello::ours()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PartitionNotFound(crate::PartitionId(6)));
        assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
        stop.cancel();
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_with_the_last_error() {
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let c = LeaderClient::new(ConnPool::new(ClientConfig::default()), vec![dead], policy(200));
        let t = std::time::Instant::now();
        let err = c.call(&Hello::ours()).await.unwrap_err();
        assert!(matches!(err, RpcError::Connect { .. }), "{err:?}");
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn with_a_deadline_retries_go_on_until_it_and_end_there() {
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        // Backoff of up to 500 ms: giving up "when the next pause would pass the deadline" would end
        // up to that much early.
        let c = LeaderClient::new(ConnPool::new(ClientConfig::default()), vec![dead], RetryPolicy::default());
        let t = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1_200);
        let err = c.call_until(&Hello::ours(), deadline).await.unwrap_err();
        assert!(matches!(err, RpcError::Connect { .. }), "the last error, not a made-up one: {err:?}");
        assert!(t.elapsed() >= Duration::from_millis(1_200), "{:?}", t.elapsed());
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn a_deadline_cuts_an_attempt_a_leader_never_answers() {
        // A leader that accepted the request but cannot commit it (its majority is gone) never replies.
        let stop = CancellationToken::new();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = handler_fn(|_req: Incoming| async {
            std::future::pending::<()>().await;
            Ok(Outgoing::msg(&crate::msg::hello::HelloAck { version: 1, server: "never".into() }))
        });
        tokio::spawn(serve(l, Arc::new(h), ServerConfig::default(), stop.clone()));
        // The request timeout (30 s by default) is far longer than the deadline.
        let c = LeaderClient::new(ConnPool::new(ClientConfig::default()), vec![addr], policy(60_000));
        let t = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        let err = c.call_until(&Hello::ours(), deadline).await.unwrap_err();
        assert!(matches!(err, RpcError::Timeout), "{err:?}");
        assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        stop.cancel();
    }
}
