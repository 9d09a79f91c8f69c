//! Instance resources, fetched on demand and cached with TTLs.
//!
//! Heartbeats stay small: when the master needs an instance's disk space, memory, cores, version or
//! feature flags, it asks that instance (`GetResources`) and caches the answer. Free space changes
//! quickly and gets a short TTL; the static facts (memory, cores, version, features) a long one. A
//! fetch refreshes both. The master's own instance is answered locally, never over RPC.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrum_proto::msg::master::{GetResources, Resources};
use ferrum_proto::rpc::ConnPool;
use ferrum_proto::ErrorCode;
use ferrum_raftstore::node::local_resources;
use futures_util::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;

/// Where resources come from: the instance itself over RPC in production, a fake in tests.
pub trait ResourceSource: Send + Sync + 'static {
    fn fetch<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<Resources, ErrorCode>>;
}

/// `GetResources` over the instance's RPC port.
pub struct RpcSource {
    pub pool: ConnPool,
    pub timeout: Duration,
}

impl ResourceSource for RpcSource {
    fn fetch<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<Resources, ErrorCode>> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, self.pool.call(addr, &GetResources {})).await {
                Ok(r) => r.map_err(|e| e.code()),
                Err(_) => Err(ErrorCode::Timeout),
            }
        })
    }
}

/// This process's own resources, read from the OS the way every node reads its own.
#[derive(Clone, Debug)]
pub struct LocalResources {
    /// Disk figures are those of the file system holding the data dir.
    pub data_dir: PathBuf,
}

impl LocalResources {
    pub fn read(&self) -> Resources {
        local_resources(&self.data_dir)
    }
}

/// Which part of the answer the caller needs, hence which TTL applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// `disk_total`, `disk_free`.
    Space,
    /// `mem_total`, `cores`, `version`, `features`.
    Facts,
}

#[derive(Clone, Copy, Debug)]
pub struct Ttls {
    pub space: Duration,
    pub facts: Duration,
}

struct Entry {
    res: Resources,
    fetched: Instant,
}

pub struct ResourceCache {
    source: Arc<dyn ResourceSource>,
    /// The advertised address of this process: answered by `local`.
    local_addr: String,
    local: LocalResources,
    ttls: Ttls,
    entries: Mutex<HashMap<String, Entry>>,
    /// Fetches from other instances (exported as a metric; tests count them).
    fetches: Counter,
}

impl ResourceCache {
    pub fn new(source: Arc<dyn ResourceSource>, local_addr: String, local: LocalResources, ttls: Ttls) -> Self {
        ResourceCache {
            source,
            local_addr,
            local,
            ttls,
            entries: Mutex::new(HashMap::new()),
            fetches: Counter::default(),
        }
    }

    pub fn fetches(&self) -> Counter {
        self.fetches.clone()
    }

    /// The resources of the instance at `addr`, fresh enough for `need`.
    pub async fn get(&self, addr: &str, need: Need) -> Result<Resources, ErrorCode> {
        if addr == self.local_addr {
            return Ok(self.local.read());
        }
        let ttl = match need {
            Need::Space => self.ttls.space,
            Need::Facts => self.ttls.facts,
        };
        if let Some(e) = self.entries.lock().expect("cache lock").get(addr) {
            if e.fetched.elapsed() < ttl {
                return Ok(e.res.clone());
            }
        }
        let res = self.source.fetch(addr).await?;
        self.fetches.inc();
        let entry = Entry { res: res.clone(), fetched: Instant::now() };
        self.entries.lock().expect("cache lock").insert(addr.to_string(), entry);
        Ok(res)
    }

    /// Drops what is cached about `addr` (e.g. the instance restarted or moved).
    pub fn forget(&self, addr: &str) {
        self.entries.lock().expect("cache lock").remove(addr);
    }
}

/// The features every one of `sets` has, sorted. No sets, no features.
pub fn intersect_features<'a>(mut sets: impl Iterator<Item = &'a [String]>) -> Vec<String> {
    let Some(first) = sets.next() else { return Vec::new() };
    let mut common: Vec<String> = first.to_vec();
    for s in sets {
        common.retain(|f| s.contains(f));
    }
    common.sort();
    common.dedup();
    common
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrum_raftstore::node::FEATURES;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Counts calls per address; free space drops with every call so a stale answer is visible.
    #[derive(Default)]
    struct Counting {
        calls: Mutex<HashMap<String, u64>>,
        free: AtomicU64,
    }

    impl Counting {
        fn calls(&self, addr: &str) -> u64 {
            self.calls.lock().unwrap().get(addr).copied().unwrap_or(0)
        }
    }

    impl ResourceSource for Counting {
        fn fetch<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<Resources, ErrorCode>> {
            *self.calls.lock().unwrap().entry(addr.to_string()).or_default() += 1;
            let free = 1000 - self.free.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                if addr == "down:1" {
                    return Err(ErrorCode::Unavailable("down".into()));
                }
                Ok(Resources {
                    disk_total: 1000,
                    disk_free: free,
                    mem_total: 1,
                    cores: 2,
                    version: "v".into(),
                    features: vec!["a".into()],
                })
            })
        }
    }

    fn cache(source: Arc<Counting>) -> ResourceCache {
        let ttls = Ttls { space: Duration::from_secs(10), facts: Duration::from_secs(600) };
        ResourceCache::new(source, "me:1".into(), LocalResources { data_dir: std::env::temp_dir() }, ttls)
    }

    #[tokio::test(start_paused = true)]
    async fn space_is_refetched_after_its_ttl_facts_after_theirs() {
        let src = Arc::new(Counting::default());
        let c = cache(src.clone());
        let first = c.get("n:1", Need::Space).await.unwrap();
        assert_eq!(src.calls("n:1"), 1);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(c.get("n:1", Need::Space).await.unwrap(), first, "within the TTL: cached");
        assert_eq!(src.calls("n:1"), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        let second = c.get("n:1", Need::Space).await.unwrap();
        assert_eq!(src.calls("n:1"), 2, "after the TTL: asked again");
        assert_ne!(second.disk_free, first.disk_free);
        // Facts live longer: 11 s old answers still serve them.
        tokio::time::advance(Duration::from_secs(11)).await;
        c.get("n:1", Need::Facts).await.unwrap();
        assert_eq!(src.calls("n:1"), 2);
        assert_eq!(c.fetches().get(), 2);
        tokio::time::advance(Duration::from_secs(600)).await;
        c.get("n:1", Need::Facts).await.unwrap();
        assert_eq!(src.calls("n:1"), 3);
    }

    #[tokio::test]
    async fn the_local_instance_is_answered_without_rpc_and_failures_are_not_cached() {
        let src = Arc::new(Counting::default());
        let c = cache(src.clone());
        let me = c.get("me:1", Need::Space).await.unwrap();
        assert!(me.disk_total > 0 && me.cores >= 1);
        assert_eq!(me.features, FEATURES.iter().map(|f| f.to_string()).collect::<Vec<_>>());
        assert_eq!(src.calls("me:1"), 0);
        assert!(c.get("down:1", Need::Space).await.is_err());
        assert!(c.get("down:1", Need::Space).await.is_err());
        assert_eq!(src.calls("down:1"), 2);
        assert_eq!(c.fetches().get(), 0);
    }

    #[test]
    fn feature_intersection() {
        let a = vec!["x".to_string(), "y".to_string()];
        let b = vec!["y".to_string(), "z".to_string()];
        assert_eq!(intersect_features([a.as_slice(), b.as_slice()].into_iter()), vec!["y".to_string()]);
        assert!(intersect_features(std::iter::empty()).is_empty());
    }
}
