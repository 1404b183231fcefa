//! The pages' error: the API's [`ApiError`] (its status and message; an
//! internal error was logged and is shown generically) rendered as an HTML
//! page instead of JSON, and the choice between the two.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::view::Nav;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

/// The error as a browser (`html`: a page) or an API client (JSON with the
/// served model's hash) reads it.
pub fn answer(state: &AppState, html: bool, error: ApiError) -> Response {
    if html {
        PageError(error).into_response()
    } else {
        state.with_model(error).into_response()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Option<Nav>,
    status: String,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let page = ErrorPage {
            nav: None,
            status: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("Error")
            ),
            message: self.0.message(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!("rendering the error page failed: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (logged on the server)",
                )
                    .into_response()
            }
        }
    }
}
