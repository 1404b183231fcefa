//! `/login`: the login page, and the one login endpoint for both clients:
//! a JSON body answers JSON (the API's session and CSRF token), a form post
//! sets the cookie and goes on to the page asked for. Both go through
//! [`auth::attempt`]: the same throttle, lockout, audit and message.

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::PageError;
use super::view::{self, Nav, render};
use crate::auth::{self, LoginRequest};
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/login", get(page).post(submit))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    next: String,
    message: Option<String>,
}

async fn page(RawQuery(raw): RawQuery) -> Result<Response, PageError> {
    let [next, ended] = view::query_values(raw.as_deref(), ["next", "ended"])?;
    render(&LoginPage {
        nav: None,
        next: local_path(next.as_deref()),
        message: ended.map(|_| "You are logged out.".to_string()),
    })
}

/// Only a path on this site: never another host (no open redirect). One
/// leading `/` not followed by `/` or `\`, and no whitespace, control
/// character or backslash anywhere (browsers drop tabs and newlines from a
/// URL, which would turn `/\t/host` into `//host`).
pub(super) fn local_path(next: Option<&str>) -> String {
    let safe = |p: &str| {
        p.starts_with('/')
            && !p[1..].starts_with(['/', '\\'])
            && p.chars().all(|c| c > ' ' && c != '\u{7f}' && c != '\\')
    };
    match next {
        Some(p) if safe(p) => p.to_string(),
        _ => "/".into(),
    }
}

/// A login posted from another site (a forged form that would log the
/// victim into the attacker's account): refused by the browser's own
/// `Sec-Fetch-Site`, or an `Origin` whose host is not this one.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if text("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    match (text("origin"), text("host")) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host),
        _ => false,
    }
}

async fn submit(
    State(state): State<AppState>,
    ConnectInfo(socket): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let form = auth::is_form(&headers);
    // A form's refusal is a page, an API client's JSON with the model's hash.
    let refuse = |error: ApiError| super::answer(&state, form, error);
    if cross_site(&headers) {
        return refuse(ApiError::forbidden("a login from another site is refused"));
    }
    // Read within `serve.max_body_bytes`, as every other body is.
    let Ok(body) = axum::body::to_bytes(body, state.config.serve.max_body_bytes).await else {
        return refuse(ApiError::too_large(
            "the login is larger than serve.max_body_bytes",
        ));
    };
    if form {
        return form_login(&state, socket, &headers, &body).await;
    }
    // JSON only with its own type: a cross-site `text/plain` form could
    // otherwise post a JSON-looking body.
    if !auth::content_type_is(&headers, "application/json") {
        return refuse(ApiError::with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST /login takes application/json (or a form)",
        ));
    }
    let request: LoginRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return refuse(ApiError::bad_request(format!(
                "the login body must be JSON {{\"user\", \"password\"}} (or a form): {e}"
            )));
        }
    };
    match auth::attempt(&state, socket, &headers, request.user, request.password).await {
        Ok((user, cookie, csrf)) => auth::login_response(&user, cookie, csrf),
        Err(e) => refuse(e),
    }
}

async fn form_login(state: &AppState, socket: SocketAddr, headers: &HeaderMap, body: &[u8]) -> Response {
    let (mut user, mut password, mut next) = (String::new(), String::new(), None);
    for (name, value) in form_urlencoded::parse(body) {
        match name.as_ref() {
            "user" => user = value.into_owned(),
            "password" => password = value.into_owned(),
            "next" => next = Some(value.into_owned()),
            _ => {}
        }
    }
    let next = local_path(next.as_deref());
    match auth::attempt(state, socket, headers, user, password).await {
        Ok((_, cookie, _)) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(e) if e.status() == StatusCode::INTERNAL_SERVER_ERROR => PageError(e).into_response(),
        Err(e) => {
            let status = e.status();
            match render(&LoginPage {
                nav: None,
                next,
                message: Some(e.message().to_string()),
            }) {
                Ok(mut page) => {
                    *page.status_mut() = status;
                    page
                }
                Err(e) => e.into_response(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed() {
        for ok in ["/", "/chain", "/stores/102?x=1"] {
            assert_eq!(local_path(Some(ok)), ok);
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/x",
            "https://evil.example",
            "",
            " /x",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn logins_from_another_site_are_recognised() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert!(!cross_site(&headers(&[("host", "a.example:8080")])));
        assert!(!cross_site(&headers(&[
            ("host", "a.example:8080"),
            ("origin", "http://a.example:8080")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "a.example:8080"),
            ("origin", "https://evil.example")
        ])));
        assert!(cross_site(&headers(&[("host", "a.example"), ("origin", "null")])));
        assert!(cross_site(&headers(&[
            ("host", "a.example"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!cross_site(&headers(&[
            ("host", "a.example"),
            ("sec-fetch-site", "same-origin")
        ])));
    }
}
