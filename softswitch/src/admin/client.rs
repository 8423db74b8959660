//! The inspection commands' side of the admin API: one GET, JSON back.

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("`{0}` is not an http://host:port address")]
    BadUrl(String),
    /// The cause is part of the one-line message, not a source the binary's error
    /// chain would print a second time.
    #[error("cannot reach {url}: {cause} (is it running, with [admin] listen?)")]
    Connect { url: String, cause: std::io::Error },
    #[error("the node at {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("talking to the node at {url}: {message}")]
    Protocol { url: String, message: String },
}

/// `GET {base}{path}` and the JSON it returns.
pub async fn get_json(
    base: &str,
    path: &str,
    token: Option<&str>,
) -> Result<serde_json::Value, AdminError> {
    request_json(hyper::Method::GET, base, path, token, None).await
}

/// `POST {base}{path}` (no body) and the JSON it returns.
pub async fn post_json(
    base: &str,
    path: &str,
    token: Option<&str>,
) -> Result<serde_json::Value, AdminError> {
    request_json(hyper::Method::POST, base, path, token, None).await
}

/// `DELETE {base}{path}` and the JSON it returns.
pub async fn delete_json(
    base: &str,
    path: &str,
    token: Option<&str>,
) -> Result<serde_json::Value, AdminError> {
    request_json(hyper::Method::DELETE, base, path, token, None).await
}

/// `POST {base}{path}` with a JSON body, and the JSON it returns.
pub async fn post_with(
    base: &str,
    path: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> Result<serde_json::Value, AdminError> {
    request_json(hyper::Method::POST, base, path, token, Some(body)).await
}

async fn request_json(
    method: hyper::Method,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value, AdminError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let authority = base
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| AdminError::BadUrl(base.to_owned()))?;
    let protocol = |message: String| AdminError::Protocol {
        url: url.clone(),
        message,
    };
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|cause| AdminError::Connect {
            url: url.clone(),
            cause,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| protocol(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "application/json");
    if let Some(t) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let payload = match body {
        Some(json) => {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            Bytes::from(json.to_string())
        }
        None => Bytes::new(),
    };
    let req = req
        .body(Full::new(payload))
        .map_err(|e| protocol(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| protocol(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| protocol(e.to_string()))?
        .to_bytes();
    if !(200..300).contains(&status) {
        // The API says what went wrong in {"error": "..."}; show just that.
        let said = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
        return Err(AdminError::Status {
            url,
            status,
            body: said,
        });
    }
    serde_json::from_slice(&body).map_err(|e| protocol(format!("not JSON: {e}")))
}
