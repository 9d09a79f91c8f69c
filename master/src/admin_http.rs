//! The admin HTTP JSON API. Any master serves it: each route becomes a master RPC sent to the
//! leader (this master or another one), so callers need to know just one master.
//!
//! | route                              | RPC / body                            |
//! |------------------------------------|---------------------------------------|
//! | `GET /api/v1/cluster`              | `GetClusterStatus` → `ClusterStatus`  |
//! | `GET /api/v1/nodes`                | `ListNodes` → `[NodeInfo]`            |
//! | `GET /api/v1/volumes`              | `ListVolumes` → `[VolumeInfo]`        |
//! | `POST /api/v1/volumes`             | [`CreateVolumeBody`] → `VolumeCreated`|
//! | `GET /api/v1/volumes/{name}`       | `GetVolume` → `VolumeInfo`            |
//! | `DELETE /api/v1/volumes/{name}`    | `DeleteVolume` → `{}`                 |
//! | `GET /api/v1/volumes/{name}/view`  | `GetVolumeView` → `VolumeView`        |
//! | `GET /api/v1/partitions[?volume=]` | `ListPartitions` → `[PartitionInfo]`  |
//! | `POST /api/v1/nodes/{id}/decommission` | `DecommissionNode` → `{}`         |
//! | `DELETE /api/v1/nodes/{id}`        | `RemoveNode` → `{}`                   |
//! | `GET /api/v1/repairs`              | `ListRepairs` → `[RepairInfo]`        |
//! | `DELETE /api/v1/masters/{id}`      | `RemoveMaster` → `RemoveMasterResp`   |
//!
//! Errors: a status code and `{"error": "<message>", "code": "<ErrorCode variant>"}`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ferrum_proto::msg::master::{
    CreateVolume, DeleteVolume, GetClusterStatus, GetVolume, GetVolumeView, ListNodes, ListPartitions, ListVolumes,
    RemoveMaster, RemoveMasterResp, VolumeViewReply,
};
use ferrum_proto::msg::repair::{DecommissionNode, ListRepairs, RemoveNode};
use ferrum_proto::msg::Rpc;
use ferrum_proto::rpc::{LeaderClient, RetryPolicy};
use ferrum_proto::{ClientId, ErrorCode, NodeId, OpId, RequestId};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::service::Master;

/// How long an admin request may wait for a leader (through an election).
const LEADER_DEADLINE: Duration = Duration::from_secs(15);

pub const DEFAULT_REPLICAS: u8 = 3;

/// `POST /api/v1/volumes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateVolumeBody {
    pub name: String,
    #[serde(default)]
    pub replicas: Option<u8>,
    /// Bytes; 0 or absent for unlimited.
    #[serde(default)]
    pub capacity: Option<u64>,
    #[serde(default)]
    pub owner: Option<String>,
    /// Send the same op id when retrying, to get the first attempt's volume instead of a conflict.
    #[serde(default)]
    pub op: Option<OpId>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct OpQuery {
    pub op_client: Option<u64>,
    pub op_request: Option<u64>,
    pub volume: Option<String>,
}

/// The error body of every route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
}

struct Api {
    master: Arc<Master>,
    policy: RetryPolicy,
    /// Op ids for requests that came without one.
    client: ClientId,
    next_request: AtomicU64,
}

impl Api {
    async fn call<R: Rpc>(&self, req: R) -> Result<R::Response, ApiError> {
        // This master first: it is the leader, or knows who is. The members as of now: masters come
        // and go, so the client is built per request (connections are pooled anyway).
        let mut addrs = vec![self.master.advertise.clone()];
        addrs.extend(self.master.members().into_iter().map(|m| m.addr).filter(|a| *a != self.master.advertise));
        let client = LeaderClient::new(self.master.pool.clone(), addrs.clone(), self.policy.clone());
        client.call(&req).await.map_err(|e| {
            let code = e.code();
            if code.is_retryable() {
                // Gave up waiting: say on what, rather than the last hop's "not the leader".
                ApiError(ErrorCode::Unavailable(format!(
                    "no master leader reachable at {} within {:?}: {code}",
                    addrs.join(","),
                    self.policy.deadline
                )))
            } else {
                ApiError(code)
            }
        })
    }

    fn op(&self, client: Option<u64>, request: Option<u64>) -> OpId {
        match (client, request) {
            (Some(c), Some(r)) => OpId::new(ClientId(c), RequestId(r)),
            _ => OpId::new(self.client, RequestId(self.next_request.fetch_add(1, Ordering::Relaxed))),
        }
    }
}

pub struct ApiError(pub ErrorCode);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            ErrorCode::VolumeNotFound(_) | ErrorCode::NotFound | ErrorCode::PartitionNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::VolumeExists(_) | ErrorCode::Exists => StatusCode::CONFLICT,
            ErrorCode::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            ErrorCode::NotLeader { .. }
            | ErrorCode::Unavailable(_)
            | ErrorCode::NoQuorum
            | ErrorCode::Busy
            | ErrorCode::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = ErrorBody { error: self.0.to_string(), code: code_name(&self.0) };
        (status, Json(body)).into_response()
    }
}

/// The variant's name: stable, for scripts.
pub fn code_name(e: &ErrorCode) -> String {
    format!("{e:?}").chars().take_while(|c| c.is_ascii_alphanumeric()).collect()
}

type ApiResult<T> = Result<Json<T>, ApiError>;
type Shared = State<Arc<Api>>;

async fn cluster(State(api): Shared) -> ApiResult<ferrum_proto::msg::master::ClusterStatus> {
    api.call(GetClusterStatus {}).await.map(Json)
}

async fn nodes(State(api): Shared) -> ApiResult<Vec<ferrum_proto::msg::master::NodeInfo>> {
    api.call(ListNodes {}).await.map(Json)
}

async fn volumes(State(api): Shared) -> ApiResult<Vec<ferrum_proto::msg::master::VolumeInfo>> {
    api.call(ListVolumes {}).await.map(Json)
}

async fn create_volume(
    State(api): Shared,
    Json(b): Json<CreateVolumeBody>,
) -> ApiResult<ferrum_proto::msg::master::VolumeCreated> {
    let op = b.op.unwrap_or_else(|| api.op(None, None));
    let req = CreateVolume {
        op,
        name: b.name,
        replicas: b.replicas.unwrap_or(DEFAULT_REPLICAS),
        capacity: b.capacity.unwrap_or(0),
        owner: b.owner.unwrap_or_default(),
    };
    api.call(req).await.map(Json)
}

async fn volume(State(api): Shared, Path(name): Path<String>) -> ApiResult<ferrum_proto::msg::master::VolumeInfo> {
    api.call(GetVolume { name }).await.map(Json)
}

async fn delete_volume(
    State(api): Shared,
    Path(name): Path<String>,
    Query(q): Query<OpQuery>,
) -> ApiResult<serde_json::Value> {
    let op = api.op(q.op_client, q.op_request);
    api.call(DeleteVolume { op, name }).await.map(|()| Json(serde_json::json!({})))
}

async fn view(State(api): Shared, Path(name): Path<String>) -> ApiResult<ferrum_proto::msg::topology::VolumeView> {
    match api.call(GetVolumeView { name, known_version: 0 }).await? {
        VolumeViewReply::Changed(v) => Ok(Json(v)),
        VolumeViewReply::Unchanged { version } => {
            Err(ApiError(ErrorCode::Internal(format!("view version {version} reported unchanged against 0"))))
        }
    }
}

async fn partitions(
    State(api): Shared,
    Query(q): Query<OpQuery>,
) -> ApiResult<Vec<ferrum_proto::msg::master::PartitionInfo>> {
    api.call(ListPartitions { volume: q.volume }).await.map(Json)
}

async fn decommission(State(api): Shared, Path(id): Path<u64>) -> ApiResult<serde_json::Value> {
    api.call(DecommissionNode { node: NodeId(id) }).await.map(|()| Json(serde_json::json!({})))
}

async fn remove_node(State(api): Shared, Path(id): Path<u64>) -> ApiResult<serde_json::Value> {
    api.call(RemoveNode { node: NodeId(id) }).await.map(|()| Json(serde_json::json!({})))
}

async fn repairs(State(api): Shared) -> ApiResult<Vec<ferrum_proto::msg::repair::RepairInfo>> {
    api.call(ListRepairs {}).await.map(Json)
}

async fn remove_master(State(api): Shared, Path(id): Path<u64>) -> ApiResult<RemoveMasterResp> {
    api.call(RemoveMaster { id: ferrum_proto::NodeId(id) }).await.map(Json)
}

pub fn router(master: Arc<Master>) -> Router {
    let api = Api {
        policy: RetryPolicy { deadline: LEADER_DEADLINE, ..RetryPolicy::default() },
        master,
        client: ClientId(RandomState::new().build_hasher().finish()),
        next_request: AtomicU64::new(1),
    };
    Router::new()
        .route("/api/v1/cluster", get(cluster))
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/volumes", get(volumes).post(create_volume))
        .route("/api/v1/volumes/{name}", get(volume).delete(delete_volume))
        .route("/api/v1/volumes/{name}/view", get(view))
        .route("/api/v1/partitions", get(partitions))
        .route("/api/v1/nodes/{id}", axum::routing::delete(remove_node))
        .route("/api/v1/nodes/{id}/decommission", axum::routing::post(decommission))
        .route("/api/v1/repairs", get(repairs))
        .route("/api/v1/masters/{id}", axum::routing::delete(remove_master))
        .with_state(Arc::new(api))
}

/// Serves the admin API on `listener` until `stop`.
pub async fn serve(listener: TcpListener, master: Arc<Master>, stop: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(master)).with_graceful_shutdown(async move { stop.cancelled().await }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_names() {
        assert_eq!(code_name(&ErrorCode::VolumeNotFound("x".into())), "VolumeNotFound");
        assert_eq!(code_name(&ErrorCode::NotLeader { leader: None }), "NotLeader");
        assert_eq!(code_name(&ErrorCode::NoQuorum), "NoQuorum");
    }
}
