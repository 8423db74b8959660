//! `[[webhook]]`: events POSTed as JSON to an operator's HTTP endpoint (a chat
//! bot, an alert manager). Each webhook has its own task reading the event
//! stream, so a slow or dead receiver delays only its own deliveries; if it falls
//! more than the stream's buffer behind, the oldest events are skipped and the log
//! says how many. A failed delivery is retried with a doubling pause.

use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::sync::broadcast::error::RecvError;

use crate::config::WebhookConfig;
use crate::events::{Event, events};

/// Attempts per event, and the pause before the second (doubled each time).
const ATTEMPTS: u32 = 5;
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// A receiver that has not answered in this long has failed this attempt.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Starts one delivery task per webhook.
pub fn spawn(hooks: &[WebhookConfig]) {
    for hook in hooks {
        let hook = hook.clone();
        let rx = events().subscribe();
        tokio::spawn(async move {
            let mut rx = rx;
            loop {
                match rx.recv().await {
                    Ok(event) if hook.wants(event.kind) => deliver(&hook, &event).await,
                    Ok(_) => {}
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::warn!(url = %hook.url, skipped, "webhook fell behind: events skipped")
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }
}

async fn deliver(hook: &WebhookConfig, event: &Event) {
    let body = serde_json::to_vec(event).unwrap_or_default();
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=ATTEMPTS {
        match tokio::time::timeout(TIMEOUT, post(hook, &body)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => return,
            Ok(Ok(status)) => {
                tracing::debug!(url = %hook.url, attempt, status, "webhook refused an event")
            }
            Ok(Err(e)) => {
                tracing::debug!(url = %hook.url, attempt, error = %e, "webhook unreachable")
            }
            Err(_) => tracing::debug!(url = %hook.url, attempt, "webhook did not answer in time"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    tracing::warn!(url = %hook.url, event = event.kind, attempts = ATTEMPTS, "webhook delivery failed; event dropped");
}

/// One POST; the receiver's status code.
async fn post(hook: &WebhookConfig, body: &[u8]) -> Result<u16, String> {
    let (authority, path) = hook.target();
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::builder()
        .method(hyper::Method::POST)
        .uri(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "softswitch");
    if let Some(t) = &hook.token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    // Read the answer through so the receiver sees a clean exchange.
    let _ = resp.into_body().collect().await;
    Ok(status)
}
