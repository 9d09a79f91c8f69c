//! The datanode's Prometheus series (on the instance's `/metrics`, labelled with instance and role).

use std::sync::atomic::AtomicU64;

use ferrum_proto::PartitionId;
use ferrum_raftstore::instance::Metrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Unit;

pub type Labels = Vec<(&'static str, String)>;

fn latency() -> Histogram {
    // 50 us .. ~3.3 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// Cheap to clone; clones update the same series.
#[derive(Clone)]
pub struct DataMetrics {
    pub bytes_written: Family<Labels, Counter>,
    pub bytes_read: Family<Labels, Counter>,
    /// Per request kind, as the client sees it (from request to reply).
    pub request_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    /// From proposing a command to its application on the leader (majority fsync + apply).
    pub commit_seconds: Histogram,
    pub crc_failures: Family<Labels, Counter>,
    pub crc_repaired: Family<Labels, Counter>,
    pub scrub_bytes: Counter,
    pub scrub_passes: Counter,
    /// Fraction of the current scrub pass done (0..1).
    pub scrub_progress: Gauge<f64, AtomicU64>,
    pub used_bytes: Family<Labels, Gauge>,
    pub extents: Family<Labels, Gauge>,
    pub read_only: Family<Labels, Gauge>,
}

impl Default for DataMetrics {
    fn default() -> Self {
        DataMetrics {
            bytes_written: Family::default(),
            bytes_read: Family::default(),
            request_seconds: Family::new_with_constructor(latency),
            commit_seconds: latency(),
            crc_failures: Family::default(),
            crc_repaired: Family::default(),
            scrub_bytes: Counter::default(),
            scrub_passes: Counter::default(),
            scrub_progress: Gauge::default(),
            used_bytes: Family::default(),
            extents: Family::default(),
            read_only: Family::default(),
        }
    }
}

pub fn partition(p: PartitionId) -> Labels {
    vec![("partition", p.to_string())]
}

pub fn op(kind: &'static str) -> Labels {
    vec![("op", kind.to_string())]
}

impl DataMetrics {
    /// Creates the series and registers them under `ferrum_data_*`.
    pub fn register(metrics: &Metrics) -> DataMetrics {
        let m = DataMetrics::default();
        let mut root = metrics.registry_mut();
        let reg = root.sub_registry_with_prefix("ferrum_data");
        reg.register_with_unit("written", "Bytes written by clients", Unit::Bytes, m.bytes_written.clone());
        reg.register_with_unit("read", "Bytes read by clients", Unit::Bytes, m.bytes_read.clone());
        reg.register_with_unit(
            "request",
            "Client request latency by operation",
            Unit::Seconds,
            m.request_seconds.clone(),
        );
        reg.register_with_unit(
            "raft_commit",
            "Latency from proposing a mutation to applying it on the leader",
            Unit::Seconds,
            m.commit_seconds.clone(),
        );
        reg.register("crc_failures", "Blocks whose CRC check failed", m.crc_failures.clone());
        reg.register("crc_repaired", "Blocks rewritten from a healthy replica", m.crc_repaired.clone());
        reg.register_with_unit("scrubbed", "Bytes verified by the scrubber", Unit::Bytes, m.scrub_bytes.clone());
        reg.register("scrub_passes", "Completed scrub passes over all partitions", m.scrub_passes.clone());
        reg.register("scrub_progress", "Fraction of the current scrub pass done", m.scrub_progress.clone());
        reg.register_with_unit("partition_used", "Sum of extent sizes", Unit::Bytes, m.used_bytes.clone());
        reg.register("partition_extents", "Extents in the partition", m.extents.clone());
        reg.register("partition_read_only", "1 when the partition refuses writes (disk full)", m.read_only.clone());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrum_raftstore::instance::Role;

    #[test]
    fn series_are_exposed_with_partition_labels() {
        let registry = Metrics::new(Role::Datanode, "dn-test");
        let m = DataMetrics::register(&registry);
        m.bytes_written.get_or_create(&partition(PartitionId(3))).inc_by(4096);
        m.crc_repaired.get_or_create(&partition(PartitionId(3))).inc();
        m.request_seconds.get_or_create(&op("write")).observe(0.002);
        m.scrub_progress.set(0.5);
        let text = registry.encode().unwrap();
        for want in [
            r#"ferrum_data_written_bytes_total{instance="dn-test",role="datanode",partition="3"} 4096"#,
            r#"ferrum_data_crc_repaired_total{instance="dn-test",role="datanode",partition="3"} 1"#,
            r#"ferrum_data_request_seconds_count{instance="dn-test",role="datanode",op="write"} 1"#,
            r#"ferrum_data_scrub_progress{instance="dn-test",role="datanode"} 0.5"#,
            "ferrum_data_raft_commit_seconds",
        ] {
            assert!(text.contains(want), "missing {want} in:\n{text}");
        }
    }
}
