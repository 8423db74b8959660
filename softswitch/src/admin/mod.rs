//! The admin API: HTTP and JSON on `[admin] listen`, for the inspection commands
//! and for scripts. Handlers only read snapshots of the node; none holds a shard
//! lock for longer than it takes to copy a call's view.

pub mod client;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

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
        .route("/api/health", get(health))
        .route("/api/calls", get(calls))
        .layer(middleware::from_fn_with_state(node.clone(), require_token))
        .with_state(node)
}

/// With `[admin] token` set, every request needs `Authorization: Bearer TOKEN`.
async fn require_token(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    if let Some(token) = &node.config.admin.token {
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
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(serde_json::json!({ "error": "a valid admin token is required" })),
            )
                .into_response();
        }
    }
    next.run(req).await
}

async fn health(State(node): State<Arc<Node>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "node": node.config.node.name,
        "calls": node.active_calls().len(),
        "transactions": node.transaction_count(),
    }))
}

async fn calls(State(node): State<Arc<Node>>) -> Json<Vec<crate::call::view::CallView>> {
    Json(node.active_calls())
}
