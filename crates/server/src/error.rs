//! The API's one error type: a status and a JSON body
//! `{"error": {"status", "message", "parameter"}, "model_sha256"}`.
//! Internal errors are logged with their whole chain and answered with a
//! generic message: their details (paths, buckets) are not shown.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    parameter: Option<String>,
    model: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
    model_sha256: Option<&'a str>,
}

#[derive(Serialize)]
struct Detail<'a> {
    status: u16,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            parameter: None,
            model: None,
        }
    }

    /// 400, naming the query parameter or body field at fault.
    pub fn bad(parameter: &str, message: impl Into<String>) -> Self {
        Self {
            parameter: Some(parameter.to_string()),
            ..Self::new(StatusCode::BAD_REQUEST, message)
        }
    }

    /// 400 about the request as a whole.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 401: no session, or one that ended.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: a session whose role may not do this, or a missing CSRF token.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 429: login attempts from one address throttled.
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on this resource"),
        )
    }

    pub fn not_ready() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no champion is loaded yet: see /readyz",
        )
    }

    pub fn timeout(seconds: f64) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the request took longer than {seconds} s"),
        )
    }

    /// With the status a rejection chose (an extractor's 400, 413, 415).
    pub fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, message)
    }

    /// An extractor's rejection (axum's status and text): a body too large
    /// or of the wrong type keeps its status; anything else the client sent
    /// wrong is a 400 (axum says 422 for a missing field); a server-side
    /// failure is internal.
    pub fn rejected(status: StatusCode, text: String) -> Self {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(status, text),
            s if s.is_server_error() => Self::internal(anyhow::anyhow!(text)),
            _ => Self::bad_request(text),
        }
    }

    /// Logged here, once, with its chain; the caller sees a generic message.
    pub fn internal(err: anyhow::Error) -> Self {
        tracing::error!("internal error: {err:#}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (logged on the server)",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The model the request was answered with.
    pub fn model(mut self, version: &str) -> Self {
        self.model = Some(version.to_string());
        self
    }
}

#[cfg(test)]
impl ApiError {
    /// The response a client gets: its status and JSON body.
    pub fn answered(self) -> (StatusCode, serde_json::Value) {
        let response = self.into_response();
        let status = response.status();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let bytes = runtime
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .expect("the body");
        (status, serde_json::from_slice(&bytes).expect("a JSON body"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                status: self.status.as_u16(),
                message: &self.message,
                parameter: self.parameter.as_deref(),
            },
            model_sha256: self.model.as_deref(),
        };
        (self.status, Json(body)).into_response()
    }
}
