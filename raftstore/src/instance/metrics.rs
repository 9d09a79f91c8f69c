//! Prometheus metrics of one instance, served on `GET /metrics` next to `GET /health`.
//!
//! Every series carries `instance` and `role` labels (set on the root registry), so several
//! instances on one host, scraped by one Prometheus, never collide.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

use super::error::InstanceError;
use super::role::Role;
use super::shutdown::Shutdown;

/// The OpenMetrics text format, which is what `prometheus_client`'s encoder writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry of one instance. Share it as `Arc<Metrics>`.
///
/// prometheus-client 0.24 registers through `&mut Registry` but encodes through `&Registry`, and
/// metrics are registered by several modules at start-up while scrapes run concurrently; a mutex
/// around the registry is the simplest fit. The metric handles themselves are atomics, so updating
/// a metric never takes this lock.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Metrics {
    /// `instance` is the instance uuid (see `DataDir::instance_uuid`) or any id the caller prefers.
    pub fn new(role: Role, instance: impl Into<String>) -> Metrics {
        let labels = [
            (Cow::Borrowed("instance"), Cow::Owned(instance.into())),
            (Cow::Borrowed("role"), Cow::Borrowed(role.as_str())),
        ];
        let mut registry = Registry::with_labels(labels.into_iter());

        let start_time = Gauge::<f64, AtomicU64>::default();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        start_time.set(now);
        registry.register_with_unit(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            start_time,
        );
        // Not plain `up`: Prometheus writes its own `up` series per scrape target, and an exported
        // one would clash with it.
        let up = Gauge::<i64>::default();
        up.set(1);
        registry.register("ferrum_up", "1 while the instance runs", up);

        Metrics { registry: Mutex::new(registry) }
    }

    /// The root registry, for modules to register their metrics at start-up; series registered
    /// here or in its sub-registries inherit the `instance` and `role` labels. Name them
    /// `ferrum_<module>_...`, or use `sub_registry_with_prefix("ferrum_<module>")`.
    pub fn registry_mut(&self) -> MutexGuard<'_, Registry> {
        // A panic aborts the process (see main_support), so a poisoned lock cannot hold a
        // half-updated registry that a live process could observe; carrying on is safe.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The OpenMetrics text exposition of every registered metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut body = String::new();
        encode(&mut body, &self.registry_mut())?;
        Ok(body)
    }
}

/// Serves `GET /metrics` and `GET /health` on `listener` until `shutdown` is triggered.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: Shutdown) -> Result<(), InstanceError> {
    let addr = listener.local_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
    let app = Router::new().route("/metrics", get(scrape)).route("/health", get(health)).with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(|source| InstanceError::Http { addr, what: "metrics", source })
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}

/// Answers as soon as the process serves HTTP; readiness of Raft groups is for other endpoints.
async fn health() -> &'static str {
    "ok\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    }

    #[tokio::test]
    async fn serves_labelled_metrics_and_health() {
        let metrics = Arc::new(Metrics::new(Role::Master, "m-test-1"));
        let requests: Counter = Counter::default();
        metrics.registry_mut().sub_registry_with_prefix("ferrum_test").register(
            "requests",
            "Requests seen",
            requests.clone(),
        );
        requests.inc();

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = Shutdown::new();
        let server = tokio::spawn(serve(listener, metrics, shutdown.clone()));

        let response = get(addr, "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.to_lowercase().contains(&format!("content-type: {CONTENT_TYPE}")), "{response}");
        let labels = r#"{instance="m-test-1",role="master"}"#;
        assert!(response.contains(&format!("ferrum_up{labels} 1\n")), "{response}");
        assert!(response.contains(&format!("process_start_time_seconds{labels} ")), "{response}");
        assert!(response.contains(&format!("ferrum_test_requests_total{labels} 1\n")), "{response}");
        assert!(response.trim_end().ends_with("# EOF"), "{response}");

        let response = get(addr, "/health").await;
        assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("ok\n"), "{response}");

        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("server stops on shutdown")
            .expect("task")
            .expect("clean stop");
    }
}
