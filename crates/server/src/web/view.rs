//! What every page shares: the navigation of the caller's role, rendering a
//! template (never cached: pages show what one role may see), number and
//! percentage formats, query parameters, URL path segments, and CSV downloads.

use std::sync::Arc;

use askama::Template;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use salescast_core::accounts::Role;
use salescast_core::pipeline::serving::Snapshot;

use super::PageError;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// The header's navigation: who is logged in and which pages their role has.
#[derive(Debug, Clone)]
pub struct Nav {
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub page: &'static str,
    pub manager: bool,
    pub analyst: bool,
    pub admin: bool,
}

impl Nav {
    pub fn new(caller: &Caller, page: &'static str) -> Self {
        let role = caller.user.role;
        Self {
            user: caller.user.name.clone(),
            role: role.as_str(),
            csrf: caller.csrf.clone(),
            page,
            manager: role >= Role::Manager,
            analyst: role >= Role::Analyst,
            admin: role >= Role::Admin,
        }
    }
}

/// The page's HTML, marked not to be stored by browsers or proxies.
pub fn render(page: &impl Template) -> Result<Response, PageError> {
    let html = page
        .render()
        .map_err(|e| ApiError::internal(anyhow::anyhow!("rendering a page: {e}")))?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            // Never inside another site's frame (no clickjacking of the forms).
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        ],
        Html(html),
    )
        .into_response())
}

/// The served snapshot, or a 503 page until the first one is loaded.
pub fn snapshot(state: &AppState) -> Result<Arc<Snapshot>, PageError> {
    Ok(state.snapshot.load_full().ok_or_else(ApiError::not_ready)?)
}

/// 12,345 (rounded), or a dash for no value.
pub fn amount(value: Option<f64>) -> String {
    let Some(v) = value.filter(|v| v.is_finite()) else {
        return "—".into();
    };
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < -0.5 { format!("-{out}") } else { out }
}

/// +5.2% (a signed change), or a dash.
pub fn change(value: Option<f64>) -> String {
    match value.filter(|v| v.is_finite()) {
        Some(v) => format!("{:+.1}%", v * 100.0),
        None => "—".into(),
    }
}

/// 12.3% (a share or an error), or a dash.
pub fn share(value: Option<f64>) -> String {
    match value.filter(|v| v.is_finite()) {
        Some(v) => format!("{:.1}%", v * 100.0),
        None => "—".into(),
    }
}

/// The values of a page's query parameters `names` in the raw query string
/// (percent-decoded as a form; invalid UTF-8 replaced), each at most once: a
/// repeated one is a 400 naming it. Other parameters are ignored, as links
/// to a page may carry more.
pub fn query_values<const N: usize>(
    raw: Option<&str>,
    names: [&str; N],
) -> Result<[Option<String>; N], ApiError> {
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let Some(slot) = names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get_mut(i))
        else {
            continue;
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ApiError::bad(&name, format!("{name:?} is given twice")));
        }
    }
    Ok(values)
}

/// A value as one URL path segment.
pub fn path_segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The first 12 characters of a hash.
pub fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// A CSV download. Fields are quoted when needed, and text that a
/// spreadsheet would run as a formula (= + - @ tab or CR at the start) is prefixed
/// with a quote mark.
pub fn csv(filename: &str, header_row: &[&str], rows: &[Vec<String>]) -> Response {
    let mut out = String::new();
    let mut line = |fields: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<String> = fields.map(csv_field).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    };
    line(&mut header_row.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        out,
    )
        .into_response()
}

fn csv_field(text: &str) -> String {
    // A finite number only: Rust also parses "-inf" and "-NaN", which a
    // spreadsheet would read as a formula.
    let numeric = text.parse::<f64>().is_ok_and(f64::is_finite);
    let guarded = if !numeric && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_a_report() {
        assert_eq!(amount(Some(1_234_567.4)), "1,234,567");
        assert_eq!(amount(Some(999.6)), "1,000");
        assert_eq!(amount(Some(-1234.0)), "-1,234");
        assert_eq!(amount(None), "—");
        assert_eq!(amount(Some(f64::NAN)), "—");
        assert_eq!(change(Some(0.0523)), "+5.2%");
        assert_eq!(change(Some(-0.1)), "-10.0%");
        assert_eq!(share(Some(0.123)), "12.3%");
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-12.5"), "-12.5");
        assert_eq!(csv_field("-inf"), "'-inf");
        assert_eq!(csv_field("-NaN"), "'-NaN");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}
