//! API errors: every error response is `{"error": {"code", "message"}}`
//! with the matching HTTP status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error returned by an API handler.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// The request is well-formed but its content is not acceptable (422).
    #[error("{1}")]
    Unprocessable(&'static str, String),
    /// Nothing under that name (404).
    #[error("{0}")]
    NotFound(String),
    /// The path exists, the method does not (405, with `Allow`).
    #[error("method not allowed here; allowed: {}", .0.join(", "))]
    MethodNotAllowed(Vec<String>),
    /// The body is larger than allowed (413).
    #[error("{0}")]
    TooLarge(String),
    /// No or an unknown API key (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The key lacks the scope (403).
    #[error("{0}")]
    Forbidden(String),
    /// Over the key's rate limit (429, with Retry-After).
    #[error("rate limit exceeded; retry after {retry_after_s} s")]
    RateLimited {
        /// Seconds until a request will be accepted.
        retry_after_s: u64,
    },
    /// The key holds as many WebSocket connections as it may (429).
    #[error("{0}")]
    TooManyConnections(String),
    /// The pipeline cannot take the request now (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a storage failure (500).
    #[error("{0}")]
    Internal(String),
}

/// Every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The error of an [`ErrorBody`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`invalid_limit`, `not_found`, `rate_limited`, …).
    pub code: String,
    /// What a person should read.
    pub message: String,
}

impl ApiError {
    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(c, _) | ApiError::Unprocessable(c, _) => c,
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TooManyConnections(_) => "too_many_connections",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(..) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } | ApiError::TooManyConnections(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if matches!(self, ApiError::Internal(_)) {
            tracing::error!(error = %self, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::RateLimited { retry_after_s } = self {
            response.insert_header((
                actix_web::http::header::RETRY_AFTER,
                retry_after_s.to_string(),
            ));
        }
        if let ApiError::MethodNotAllowed(allowed) = self {
            response.insert_header((actix_web::http::header::ALLOW, allowed.join(", ")));
        }
        if let ApiError::Unauthorized(_) = self {
            response.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message: self.to_string(),
            },
        })
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_transient() {
            ApiError::Unavailable(format!("the store is unavailable: {e}"))
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(e.to_string())
    }
}
