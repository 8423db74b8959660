//! The admin API: HTTP and JSON on `[admin] listen`, for the inspection commands
//! and for scripts. Handlers only read snapshots of the node; none holds a shard
//! lock for longer than it takes to copy a call's view.

pub mod client;
pub mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::runtime::Node;

/// Binds the API and serves it in the background. None when `[admin] listen` is off.
pub async fn spawn(node: Arc<Node>) -> anyhow::Result<Option<SocketAddr>> {
    let Some(addr) = node.config.admin.addr() else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the admin API"))?;
    let local = listener.local_addr()?;
    let app = router(node);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the admin API stopped");
        }
    });
    Ok(Some(local))
}

fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/health", get(health))
        .route("/api/calls", get(calls))
        .route("/api/registrations", get(registrations))
        .route("/api/cdr", get(cdr))
        .route("/api/cluster", get(cluster))
        .route("/api/calls/{uniqueid}/hangup", post(hangup))
        .route("/api/bans", get(bans))
        .route("/api/bans/{address}", axum::routing::delete(lift_ban))
        .route("/api/dialplan", get(dialplan_contexts))
        .route("/api/reload", post(reload))
        .route("/api/events", get(recent_events))
        .route("/api/originate", post(originate))
        .route("/api/peers", get(peers))
        .route("/api/drain", post(drain))
        .route("/api/undrain", post(undrain))
        .route("/api/peers/{tag}/{action}", post(peer_action))
        .layer(middleware::from_fn_with_state(node.clone(), require_token))
        // The page holds no data (it reads the API above, with the token the
        // operator types in), so it is served to anyone who can reach the port.
        .route("/", get(status_page))
        .with_state(node)
}

/// `GET /`: the live status page (static HTML that polls the API).
async fn status_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("status.html"),
    )
        .into_response()
}

/// With `[admin] token` set, every request needs `Authorization: Bearer TOKEN`.
async fn require_token(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    match refusal(node.config.admin.token.as_deref(), &req) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}

/// The 401 a request gets when a token is configured and it does not present it
/// (shared with the balancer's API).
pub(crate) fn refusal(token: Option<&str>, req: &Request) -> Option<Response> {
    if let Some(token) = token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = presented.is_some_and(|p| {
            use subtle::ConstantTimeEq as _;
            bool::from(p.as_bytes().ct_eq(token.as_bytes()))
        });
        if !ok {
            return Some(
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    Json(serde_json::json!({ "error": "a valid admin token is required" })),
                )
                    .into_response(),
            );
        }
    }
    None
}

/// `GET /metrics`: Prometheus text; the gauges are read from the node now.
async fn metrics(State(node): State<Arc<Node>>) -> Response {
    use crate::metrics::{PeerLabels, StateLabels};
    let m = crate::metrics::metrics();
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    m.registrations.set(count(node.registrar.location.len()));
    m.calls_active.set(
        node.calls_in_progress
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0),
    );
    m.transactions.set(count(node.transaction_count()));
    m.tcp_connections.set(count(node.tcp_connection_count()));
    m.draining.set(i64::from(node.is_draining()));
    // Peers and nodes that went away must not linger in the families.
    m.peer_up.clear();
    for p in node.peer_view() {
        let up = matches!(p.state, "up" | "suspect");
        m.peer_up
            .get_or_create(&PeerLabels {
                tag: p.tag,
                target: p.session_target.clone(),
            })
            .set(i64::from(up));
    }
    match node.store.nodes().await {
        Ok(rows) => {
            m.nodes.clear();
            let now = crate::runtime::unix_now_ms();
            for row in rows {
                m.nodes
                    .get_or_create(&StateLabels {
                        state: row.state_at(now).to_owned(),
                    })
                    .inc();
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the nodes table"),
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        m.render(),
    )
        .into_response()
}

async fn health(State(node): State<Arc<Node>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "node": node.config.node.name,
        "calls": node.active_calls().len(),
        "transactions": node.transaction_count(),
        "draining": node.is_draining(),
        "stops_when_idle": node.stops_when_idle(),
    }))
}

#[derive(serde::Deserialize)]
struct DrainQuery {
    /// Stop the node once its last call has ended.
    #[serde(default)]
    stop: bool,
}

/// `POST /api/drain[?stop=true]`: refuse new calls, finish the ones in progress,
/// and with `stop` exit after the last one.
async fn drain(
    State(node): State<Arc<Node>>,
    axum::extract::Query(q): axum::extract::Query<DrainQuery>,
) -> Json<serde_json::Value> {
    if q.stop {
        node.set_stop_when_idle(true);
    } else {
        node.set_draining(true);
    }
    health(State(node)).await
}

/// `POST /api/undrain`: take new calls again (and stay up).
async fn undrain(State(node): State<Arc<Node>>) -> Json<serde_json::Value> {
    node.set_stop_when_idle(false);
    node.set_draining(false);
    health(State(node)).await
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// `POST /api/calls/UNIQUEID/hangup`.
async fn hangup(State(node): State<Arc<Node>>, Path(uniqueid): Path<String>) -> Response {
    if node.hang_up(&uniqueid) {
        Json(serde_json::json!({ "uniqueid": uniqueid, "hung_up": true })).into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("no call in progress has UNIQUEID {uniqueid}"),
        )
    }
}

/// `GET /api/bans`: sources banned for failed logins, with the seconds left.
async fn bans(State(node): State<Arc<Node>>) -> Json<Vec<serde_json::Value>> {
    let now = std::time::Instant::now();
    Json(
        node.registrar
            .guard
            .bans(now)
            .into_iter()
            .map(|(ip, left)| serde_json::json!({ "address": ip.to_string(), "expires_in": left.as_secs() }))
            .collect(),
    )
}

/// `DELETE /api/bans/ADDRESS`: lift a ban before it runs out.
async fn lift_ban(State(node): State<Arc<Node>>, Path(address): Path<String>) -> Response {
    let Ok(ip) = address.parse::<std::net::IpAddr>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{address}` is not an IP address"),
        );
    };
    if node.registrar.guard.lift(ip, std::time::Instant::now()) {
        tracing::info!(%ip, "operator lifted a ban");
        Json(serde_json::json!({ "address": ip.to_string(), "lifted": true })).into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("{ip} is not banned"))
    }
}

/// `GET /api/dialplan`: the running plan's contexts.
async fn dialplan_contexts(State(node): State<Arc<Node>>) -> Json<Vec<serde_json::Value>> {
    let plan = node.dialplan();
    Json(
        plan.contexts()
            .map(|c| {
                let mut names: Vec<&str> = c.extensions.iter().map(|e| e.name.as_str()).collect();
                names.dedup();
                serde_json::json!({
                    "name": c.name,
                    "extensions": names,
                    "includes": c.includes.iter().map(|i| i.context.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// `POST /api/originate` with `{"exten", "context", "seconds", "callerid"}`: a
/// test call into the dialplan from the node's built-in phone. 202 once placed.
async fn originate(
    State(node): State<Arc<Node>>,
    Json(req): Json<crate::runtime::originate::Request>,
) -> Response {
    match node.originate(req).await {
        Ok(started) => (StatusCode::ACCEPTED, Json(started)).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

/// `GET /api/events`: the recent events, oldest first.
async fn recent_events() -> Json<Vec<crate::events::Event>> {
    Json(crate::events::events().recent())
}

/// `POST /api/reload`: the dialplan and dial peers again, checked first; a plan
/// or config with a mistake is refused with 422 and `file:line:col: message`,
/// and the running ones stay.
async fn reload(State(node): State<Arc<Node>>) -> Response {
    match node.reload() {
        Ok(done) => Json(
            serde_json::json!({ "reloaded": true, "contexts": done.contexts, "peers": done.peers }),
        )
        .into_response(),
        Err(message) => error(StatusCode::UNPROCESSABLE_ENTITY, message),
    }
}

/// A failure to read the database, as the API reports it.
fn store_error(e: crate::store::StoreError) -> Response {
    tracing::warn!(error = %e, "admin API: cannot read the database");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "error": format!("cannot read the database: {e}") })),
    )
        .into_response()
}

/// `GET /api/registrations`: the bindings this node routes with.
async fn registrations(State(node): State<Arc<Node>>) -> Response {
    let via = match node.store.binding_nodes().await {
        Ok(v) => v,
        Err(e) => return store_error(e),
    };
    let bindings = node.registrar.location.all();
    Json(views::registrations(
        &bindings,
        &via,
        crate::runtime::unix_now(),
    ))
    .into_response()
}

#[derive(serde::Deserialize)]
struct CdrQuery {
    #[serde(default = "twenty")]
    last: u32,
}

fn twenty() -> u32 {
    20
}

/// `GET /api/cdr?last=N`: the N most recent call records, oldest first.
async fn cdr(
    State(node): State<Arc<Node>>,
    axum::extract::Query(q): axum::extract::Query<CdrQuery>,
) -> Response {
    match node.store.recent_cdrs(i64::from(q.last.min(10_000))).await {
        Ok(rows) => Json(views::cdrs(&rows)).into_response(),
        Err(e) => store_error(e),
    }
}

/// `GET /api/cluster`: the nodes sharing this node's database.
async fn cluster(State(node): State<Arc<Node>>) -> Response {
    match node.store.nodes().await {
        Ok(rows) => Json(views::nodes(&rows, crate::runtime::unix_now_ms())).into_response(),
        Err(e) => store_error(e),
    }
}

async fn calls(State(node): State<Arc<Node>>) -> Json<Vec<crate::call::view::CallView>> {
    Json(node.active_calls())
}

async fn peers(State(node): State<Arc<Node>>) -> Json<Vec<crate::runtime::peers::PeerView>> {
    Json(node.peer_view())
}

/// `POST /api/peers/TAG/disable|drain|enable`: the operator's hand on a peer.
/// It lasts until the operator lifts it, through reloads.
async fn peer_action(
    State(node): State<Arc<Node>>,
    Path((tag, action)): Path<(String, String)>,
) -> Response {
    use crate::runtime::peers::PeerAction;
    let error = |status: StatusCode, message: String| {
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    };
    let Ok(tag) = tag.parse::<u32>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{tag}` is not a dial peer tag"),
        );
    };
    let Some(act) = PeerAction::parse(&action) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("`{action}` is not disable, drain or enable"),
        );
    };
    match node.peer_action(tag, act) {
        Ok(state) => {
            tracing::info!(tag, action = %action, state = %state, "operator changed a dial peer");
            Json(serde_json::json!({ "tag": tag, "state": state.as_str() })).into_response()
        }
        Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}
