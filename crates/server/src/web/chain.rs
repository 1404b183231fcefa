//! The chain overview (manager and up): the chain's sales of the last 7 and
//! 28 days against the period before and the same weeks last year, the next
//! week's forecast, the chain's chart, stores ranked by growth and by
//! forecast error, and a table of every store sorted by any column (on the
//! server: no script), which `/chain.csv` downloads in the same order.

use std::cmp::Ordering;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use salescast_core::accounts::Role;
use salescast_core::pipeline::serving::Snapshot;

use super::PageError;
use super::stores::{PeriodView, store_chart};
use super::view::{self, Nav, amount, change, render, share};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/chain", get(page))
        .route("/chain.csv", get(download))
}

/// The table's columns: key (the `sort` parameter), label, numeric.
const COLUMNS: [(&str, &str, bool); 8] = [
    ("store", "Store", false),
    ("sales_7", "Sales 7d", true),
    ("growth_7", "vs prior 7d", true),
    ("sales_28", "Sales 28d", true),
    ("growth_28", "vs prior 28d", true),
    ("yoy_28", "vs last year 28d", true),
    ("forecast_7", "Forecast next 7d", true),
    ("error", "Forecast error", true),
];

/// The table's order as the query asks: `sort` (a column key) and `dir`.
#[derive(Debug)]
pub(super) struct Sort {
    sort: Option<String>,
    dir: Option<String>,
}

impl Sort {
    /// From the raw query string (see [`view::query_values`]).
    pub(super) fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let [sort, dir] = view::query_values(raw, ["sort", "dir"])?;
        Ok(Self { sort, dir })
    }
}

/// One store's figures (numbers, for sorting and CSV).
#[derive(Debug)]
pub(super) struct Figures {
    pub(super) store: String,
    pub(super) values: [Option<f64>; 7],
}

fn figures(snapshot: &Snapshot) -> Vec<Figures> {
    let board = &snapshot.board;
    board
        .stores()
        .map(|s| {
            let week = board.period(Some(s), 7);
            let month = board.period(Some(s), 28);
            Figures {
                store: s.to_string(),
                values: [
                    week.total,
                    week.growth(),
                    month.total,
                    month.growth(),
                    month.year_on_year(),
                    board.forecast_total(Some(s), &snapshot.forecasts, 7),
                    board.accuracy.as_ref().and_then(|a| a.by_store.get(s).copied()),
                ],
            }
        })
        .collect()
}

/// The rows sorted by the column asked for (unknown columns are a 400);
/// stores without a value sort last either way.
pub(super) fn sorted(mut rows: Vec<Figures>, sort: &Sort) -> Result<(Vec<Figures>, usize, bool), ApiError> {
    let key = sort.sort.as_deref().unwrap_or("growth_28");
    let column = COLUMNS.iter().position(|c| c.0 == key).ok_or_else(|| {
        let known: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
        ApiError::bad(
            "sort",
            format!("unknown column {key:?} (one of {})", known.join(", ")),
        )
    })?;
    let descending = match sort.dir.as_deref() {
        None => column != 0,
        Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(ApiError::bad("dir", format!("{other:?} is not asc or desc"))),
    };
    rows.sort_by(|a, b| {
        if column == 0 {
            let o = natural(&a.store, &b.store);
            return if descending { o.reverse() } else { o };
        }
        match (a.values[column - 1], b.values[column - 1]) {
            (Some(x), Some(y)) => {
                let o = x.total_cmp(&y).then_with(|| natural(&a.store, &b.store));
                if descending { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => natural(&a.store, &b.store),
        }
    });
    Ok((rows, column, descending))
}

/// Numbers as numbers ("9" before "10"), before any text; text by bytes.
/// A total order (a sort on a non-total order may panic).
pub(super) fn natural(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

pub struct Column {
    key: &'static str,
    label: &'static str,
    numeric: bool,
    next_dir: &'static str,
    arrow: &'static str,
}

pub struct Row {
    link: String,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "chain.html")]
struct ChainPage {
    nav: Option<Nav>,
    data_day: String,
    model: String,
    store_count: usize,
    week: PeriodView,
    month: PeriodView,
    forecast_7: String,
    error: String,
    error_note: String,
    chart: String,
    top_growth: Vec<(String, String, String)>,
    top_error: Vec<(String, String, String)>,
    sort: &'static str,
    dir: &'static str,
    columns: Vec<Column>,
    rows: Vec<Row>,
}

fn cells(f: &Figures) -> Vec<String> {
    let v = &f.values;
    vec![
        f.store.clone(),
        amount(v[0]),
        change(v[1]),
        amount(v[2]),
        change(v[3]),
        change(v[4]),
        amount(v[5]),
        share(v[6]),
    ]
}

/// The top five by a column (highest first), as (store, link, value).
fn top(rows: &[Figures], column: usize, show: fn(Option<f64>) -> String) -> Vec<(String, String, String)> {
    let mut ranked: Vec<&Figures> = rows.iter().filter(|f| f.values[column].is_some()).collect();
    ranked.sort_by(|a, b| {
        let (x, y) = (
            a.values[column].unwrap_or(f64::NAN),
            b.values[column].unwrap_or(f64::NAN),
        );
        y.total_cmp(&x).then_with(|| natural(&a.store, &b.store))
    });
    ranked
        .into_iter()
        .take(5)
        .map(|f| {
            (
                f.store.clone(),
                view::path_segment(&f.store),
                show(f.values[column]),
            )
        })
        .collect()
}

async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    caller.require(Role::Manager)?;
    let sort = Sort::parse(raw.as_deref())?;
    let snapshot = view::snapshot(&state)?;
    let board = &snapshot.board;
    let all = figures(&snapshot);
    let top_growth = top(&all, 3, change);
    let top_error = top(&all, 6, share);
    let (rows, column, descending) = sorted(all, &sort)?;
    let (error, error_note) = match &board.accuracy {
        Some(a) => (
            share(a.chain),
            format!("forecasts of {} scored through {}", a.data_day, a.through),
        ),
        None => ("—".into(), "no earlier forecasts to score yet".into()),
    };
    let chain_forecast = board.chain_forecast(&snapshot.forecasts);
    let chart = store_chart(
        "The chain: sales and forecast",
        board.daily(None, 56),
        &chain_forecast,
        snapshot.data_day,
    );
    render(&ChainPage {
        nav: Some(Nav::new(&caller, "chain")),
        data_day: snapshot.data_day.to_string(),
        model: view::short(snapshot.version()),
        store_count: rows.len(),
        week: board.period(None, 7).into(),
        month: board.period(None, 28).into(),
        forecast_7: amount(board.forecast_total(None, &snapshot.forecasts, 7)),
        error,
        error_note,
        chart,
        top_growth,
        top_error,
        sort: COLUMNS[column].0,
        dir: if descending { "desc" } else { "asc" },
        columns: COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| Column {
                key: c.0,
                label: c.1,
                numeric: c.2,
                next_dir: if i == column && descending { "asc" } else { "desc" },
                arrow: match (i == column, descending) {
                    (true, true) => " ▼",
                    (true, false) => " ▲",
                    _ => "",
                },
            })
            .collect(),
        rows: rows
            .iter()
            .map(|f| Row {
                link: view::path_segment(&f.store),
                cells: cells(f),
            })
            .collect(),
    })
}

async fn download(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    caller.require(Role::Manager)?;
    let sort = Sort::parse(raw.as_deref())?;
    let snapshot = view::snapshot(&state)?;
    let (rows, _, _) = sorted(figures(&snapshot), &sort)?;
    let number = |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_default();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|f| {
            let v = &f.values;
            vec![
                f.store.clone(),
                number(v[0], 2),
                number(v[1], 4),
                number(v[2], 2),
                number(v[3], 4),
                number(v[4], 4),
                number(v[5], 2),
                number(v[6], 4),
            ]
        })
        .collect();
    let header: Vec<&str> = std::iter::once(snapshot.board.store_key.as_str())
        .chain(COLUMNS[1..].iter().map(|c| c.0))
        .collect();
    Ok(view::csv(
        &format!("chain-{}.csv", snapshot.data_day),
        &header,
        &table,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_sort_in_a_total_order() {
        let mut names = vec!["9", "10", "1a", "b", "NaN", "-1", "10", "a"];
        names.sort_by(|a, b| natural(a, b));
        assert_eq!(names, ["-1", "9", "10", "10", "NaN", "1a", "a", "b"]);
    }
}
