//! Calendar tables (`[[data.calendars]]`, configured in `mapping`): checked
//! and typed at ingest, stored in the lake at `calendars/<name>.parquet`,
//! and read back. `tables::join_calendars` joins them onto feature rows by
//! each row's own date (and, with `by`, the row's attribute value such as
//! the store's state).
//!
//! A calendar is known in advance: a forecast row for day D+h carries the
//! calendar of D+h, never anything about sales. Days the table does not
//! hold get 0 (the flag and numeric columns) or no category; the stored
//! table remembers the last day its file covered (`__covers_until`), so a
//! forecast beyond it is warned about.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::ingest::date_from_days;
use crate::lake::{Lake, LakeError, WriteOutcome, decode_parquet, encode_parquet};
use crate::mapping::{CalendarTable, DataMapping};
use crate::storage::{PutMode, StoreError};
use crate::tables::TableDigest;
use crate::validate::{self, DataError, Source};

/// Where calendar tables live in the lake.
pub const CALENDARS_PREFIX: &str = "calendars/";

/// The stored column holding the last day of the ingested file (every row
/// the same), whether or not that day had a row after `where`.
pub const COVERS_UNTIL: &str = "__covers_until";

/// The 0-based row of the input file, while cleaning.
const ROW: &str = "__calendar_row";

pub fn calendar_key(name: &str) -> String {
    format!("{CALENDARS_PREFIX}{name}.parquet")
}

/// Types and checks a calendar file and keeps the rows `where` selects:
/// every date readable (errors name the row), the columns used present,
/// numeric columns numbers, a `by` value on every kept row, at least one
/// kept row, and no two kept rows for one day (and `by` value) that
/// disagree on a column (which one would apply is ambiguous; rows that
/// agree are one). The result: the date, the `by` column, the feature
/// columns and [`COVERS_UNTIL`], sorted by day and `by`.
pub fn clean_calendar(
    df: DataFrame,
    calendar: &CalendarTable,
    mapping: &DataMapping,
    source: &Source,
) -> Result<DataFrame, DataError> {
    let polars = |e: PolarsError| source.error(format!("cannot process: {e}"));
    let by_column = calendar.by_column();
    let needed: Vec<String> = std::iter::once(calendar.date_column.clone())
        .chain(by_column.map(str::to_string))
        .chain(calendar.filter.keys().cloned())
        .chain(calendar.columns.iter().cloned())
        .collect();
    validate::require_columns(&df, &needed, source)?;
    validate::require_rows(&df, source)?;
    let height = df.height();
    let column = |name: &str| df.column(name).map_err(polars);
    let dates = validate::parse_dates(column(&calendar.date_column)?, &calendar.date_format, source)?;
    let covers_until = dates.date().map_err(polars)?.physical().max();

    let mut keep = BooleanChunked::full("keep".into(), true, height);
    for (name, values) in &calendar.filter {
        let text = validate::to_text(column(name)?, source)?;
        let matches: BooleanChunked = text
            .str()
            .map_err(polars)?
            .iter()
            .map(|v| Some(v.is_some_and(|v| values.values().iter().any(|w| w == v))))
            .collect();
        keep = &keep & &matches;
    }

    let mut columns = vec![dates];
    if let Some(by) = by_column {
        columns.push(validate::to_text(column(by)?, source)?);
    }
    for name in &calendar.columns {
        columns.push(typed(column(name)?, mapping, source)?);
    }
    columns.push(Column::new(ROW.into(), (0..height as u64).collect::<Vec<_>>()));
    let typed = DataFrame::new(height, columns).map_err(polars)?;
    let mut order = vec![calendar.date_column.clone()];
    order.extend(by_column.map(str::to_string));
    order.push(ROW.into());
    let kept = typed
        .filter(&keep)
        .and_then(|df| df.sort(order, SortMultipleOptions::default()))
        .map_err(polars)?;
    if kept.height() == 0 {
        return Err(source.error(format!(
            "calendar {:?}: no row is left after `where` ({}); check data.calendars' `where`",
            calendar.name,
            describe_filter(calendar)
        )));
    }
    let rows: Vec<usize> = kept
        .column(ROW)
        .and_then(|c| c.u64().cloned())
        .map_err(polars)?
        .into_no_null_iter()
        .map(|r| r as usize)
        .collect();
    if let Some(by) = by_column {
        let values = kept.column(by).map_err(polars)?;
        if let Some(i) = values.is_null().iter().position(|v| v == Some(true)) {
            return Err(source.error_at(rows[i], by, "the by value is empty on a row `where` keeps"));
        }
    }
    let unique = one_row_per_key(&kept, calendar, &rows, source)?;
    let mut out = kept.take(&unique).map_err(polars)?;
    out.drop_in_place(ROW).map_err(polars)?;
    let until = Column::new(COVERS_UNTIL.into(), vec![covers_until; out.height()])
        .cast(&DataType::Date)
        .map_err(polars)?;
    out.with_column(until).map_err(polars)?;
    Ok(out)
}

/// A feature column typed as the mapping says: numbers, or text for a category.
fn typed(column: &Column, mapping: &DataMapping, source: &Source) -> Result<Column, DataError> {
    if mapping.categorical.iter().any(|c| c == column.name().as_str()) {
        validate::to_text(column, source)
    } else {
        validate::parse_numbers(column, source)
    }
}

fn describe_filter(calendar: &CalendarTable) -> String {
    if calendar.filter.is_empty() {
        return "no filter".into();
    }
    calendar
        .filter
        .iter()
        .map(|(c, v)| format!("{c} in {:?}", v.values()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows to keep of a frame sorted by day, `by` and file row: the first
/// of each key. Later rows of a key must agree with it on every feature
/// column, else the file is refused naming both rows.
fn one_row_per_key(
    kept: &DataFrame,
    calendar: &CalendarTable,
    rows: &[usize],
    source: &Source,
) -> Result<IdxCa, DataError> {
    let polars = |e: PolarsError| source.error(format!("cannot process: {e}"));
    let mut key_columns = vec![calendar.date_column.as_str()];
    key_columns.extend(calendar.by_column());
    let keys: Vec<&Column> = key_columns
        .iter()
        .map(|c| kept.column(c))
        .collect::<PolarsResult<_>>()
        .map_err(polars)?;
    let values: Vec<&Column> = calendar
        .columns
        .iter()
        .map(|c| kept.column(c))
        .collect::<PolarsResult<_>>()
        .map_err(polars)?;
    let cell = |column: &Column, i: usize| column.get(i).map(|v| v.into_static()).map_err(polars);
    let mut unique: Vec<IdxSize> = Vec::with_capacity(kept.height());
    let mut first = 0usize;
    for i in 0..kept.height() {
        let same_key = i > 0
            && keys
                .iter()
                .map(|k| Ok(cell(k, i)? == cell(k, first)?))
                .collect::<Result<Vec<bool>, DataError>>()?
                .iter()
                .all(|same| *same);
        if !same_key {
            unique.push(i as IdxSize);
            first = i;
            continue;
        }
        for (name, column) in calendar.columns.iter().zip(&values) {
            let (a, b) = (cell(column, first)?, cell(column, i)?);
            if a != b {
                let key = key_columns
                    .iter()
                    .zip(&keys)
                    .map(|(n, k)| Ok(format!("{n}={}", show(&cell(k, i)?))))
                    .collect::<Result<Vec<_>, DataError>>()?
                    .join(", ");
                return Err(source.error_at(
                    rows[i],
                    name,
                    format!(
                        "same day{} as {} ({key}) with another value ({} there, {} here): \
                         which one applies is ambiguous; keep one row, or narrow `where`",
                        if calendar.by.is_some() {
                            " and by value"
                        } else {
                            ""
                        },
                        source.row(rows[first]),
                        show(&a),
                        show(&b),
                    ),
                ));
            }
        }
    }
    Ok(IdxCa::from_vec("rows".into(), unique))
}

fn show(value: &AnyValue) -> String {
    match value {
        AnyValue::String(s) => format!("{s:?}"),
        AnyValue::StringOwned(s) => format!("{:?}", s.as_str()),
        AnyValue::Date(d) => date_from_days(*d).map_or_else(|| d.to_string(), |d| d.to_string()),
        AnyValue::Null => "empty".into(),
        other => other.to_string(),
    }
}

/// Writes a cleaned calendar table, replacing the previous one.
pub fn write_calendar(lake: &Lake, name: &str, df: &mut DataFrame) -> Result<WriteOutcome, LakeError> {
    let key = calendar_key(name);
    let bytes = encode_parquet(df).map_err(|source| LakeError::Polars {
        key: key.clone(),
        source,
    })?;
    let store = lake.store();
    let outcome = match store.get(&key) {
        Ok(old) if old.bytes == bytes => return Ok(WriteOutcome::Unchanged),
        Ok(_) => WriteOutcome::Replaced,
        Err(StoreError::NotFound { .. }) => WriteOutcome::Written,
        Err(e) => return Err(e.into()),
    };
    store.put(&key, &bytes, PutMode::Overwrite)?;
    Ok(outcome)
}

/// Reads a calendar table the mapping names, typed as the mapping says now;
/// a column the stored table lacks (the mapping changed since it was
/// ingested) is refused, asking for the file again. With the digest of the
/// bytes read.
pub fn read_calendar(
    lake: &Lake,
    calendar: &CalendarTable,
    mapping: &DataMapping,
) -> Result<(DataFrame, TableDigest), LakeError> {
    let key = calendar_key(&calendar.name);
    let uri = lake.store().uri_of(&key);
    let again = format!("ingest it with --calendar {}=FILE", calendar.name);
    let object = lake.store().get(&key).map_err(|e| match e {
        StoreError::NotFound { .. } => LakeError::Data(DataError::file(
            uri.clone(),
            format!("calendar table {:?} is not in the lake; {again}", calendar.name),
        )),
        other => other.into(),
    })?;
    let source = Source::new(uri, false);
    let digest = TableDigest::of(key, &object.bytes);
    let df = decode_parquet(object.bytes).map_err(|e| source.error(format!("not readable Parquet: {e}")))?;
    let needed: Vec<String> = std::iter::once(calendar.date_column.clone())
        .chain(calendar.by_column().map(str::to_string))
        .chain(calendar.columns.iter().cloned())
        .chain(std::iter::once(COVERS_UNTIL.to_string()))
        .collect();
    validate::require_columns(&df, &needed, &source).map_err(|mut e| {
        e.problem = format!(
            "{}; the mapping changed since it was ingested: {again}",
            e.problem
        );
        e
    })?;
    let mut columns = Vec::with_capacity(needed.len());
    for name in &needed {
        let column = df.column(name).map_err(|e| source.error(e.to_string()))?;
        columns.push(if calendar.columns.contains(name) {
            typed(column, mapping, &source)?
        } else {
            column.clone()
        });
    }
    let df = DataFrame::new(df.height(), columns).map_err(|e| source.error(e.to_string()))?;
    Ok((df, digest))
}

/// The last day the calendar's file covered.
pub fn covers_until(df: &DataFrame) -> Option<NaiveDate> {
    let days = df.column(COVERS_UNTIL).ok()?.date().ok()?.physical().max()?;
    date_from_days(days)
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
