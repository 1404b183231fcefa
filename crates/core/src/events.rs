//! Events finer than a day (`data.aggregate = "sum"`), such as point-of-sale
//! records delivered by Kinesis Data Firehose: their timestamps read as UTC
//! days, and their target summed per day and series into the rows the lake
//! holds. The covariates of one day and series must agree across its events.
//!
//! The sum is deterministic: rows are ordered by day, series and target
//! before summing, so the same events give the same partition bytes
//! whatever order the files or records came in.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use polars::prelude::*;

use crate::mapping::DataMapping;
use crate::validate::{self, DataError, MAX_SALES, Source};

/// Which input file an event came from (an index into the sources).
const INPUT: &str = "__salescast_input";
/// The event's 0-based row in its input file.
const ROW: &str = "__salescast_row";
/// How many events a day and series has.
const COUNT: &str = "__salescast_events";

/// Formats of a timestamp without an offset, taken as UTC.
const NAIVE_TIMESTAMPS: [&str; 2] = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"];

/// The UTC day of a timestamp: RFC 3339 (`2015-07-31T10:22:01Z`, any
/// offset), `YYYY-MM-DD HH:MM:SS` (UTC), or a plain date in `date_format`.
pub fn event_day(text: &str, date_format: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc).date_naive());
    }
    for format in NAIVE_TIMESTAMPS {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.date());
        }
    }
    NaiveDate::parse_from_str(text, date_format).ok()
}

/// The date column of events as days: text through [`event_day`]; dates and
/// datetimes (Parquet) as [`validate::parse_dates`] takes them. Names the
/// first value that is not a timestamp.
pub fn parse_event_days(column: &Column, date_format: &str, source: &Source) -> Result<Column, DataError> {
    if column.dtype() != &DataType::String {
        return validate::parse_dates(column, date_format, source);
    }
    let name = column.name().as_str();
    let text = column.str().map_err(|e| source.error(e.to_string()))?;
    let mut days = Vec::with_capacity(text.len());
    for (i, value) in text.iter().enumerate() {
        let Some(value) = value else {
            return Err(source.error_at(i, name, "the date is empty"));
        };
        let Some(day) = event_day(value, date_format) else {
            return Err(source.error_at(
                i,
                name,
                format!(
                    "{value:?} is not a timestamp (RFC 3339 such as 2015-07-31T10:22:01Z, or \
                     YYYY-MM-DD HH:MM:SS in UTC) nor a date in format {date_format:?}"
                ),
            ));
        };
        days.push(day.to_epoch_days());
    }
    Column::new(name.into(), days)
        .cast(&DataType::Date)
        .map_err(|e| source.error(e.to_string()))
}

/// Sums typed events (each frame as [`crate::ingest::type_sales`] returns
/// it, with the file it came from) per day and series. Returns the lake's
/// columns (date, series keys, target, covariates, in mapping order) sorted
/// by day and series; other columns are dropped. Refuses, naming both files
/// and rows, the day and the series, a covariate that differs within one day
/// and series; and a sum above [`MAX_SALES`].
pub fn sum_events(parts: Vec<(DataFrame, Source)>, mapping: &DataMapping) -> Result<DataFrame, DataError> {
    let sources: Vec<Source> = parts.iter().map(|(_, s)| s.clone()).collect();
    let all_names = Source::new(
        sources
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(" + "),
        false,
    );
    let polars = |e: PolarsError| all_names.error(format!("cannot sum the events: {e}"));
    let mut wanted: Vec<&str> = vec![mapping.date_column.as_str()];
    wanted.extend(mapping.series_keys.iter().map(String::as_str));
    wanted.push(mapping.target.as_str());
    wanted.extend(mapping.covariates.iter().map(String::as_str));
    let mut all: Option<DataFrame> = None;
    for (i, (df, source)) in parts.into_iter().enumerate() {
        let mut part = df
            .select(wanted.iter().copied())
            .map_err(|e| source.error(e.to_string()))?;
        let n = part.height();
        part.with_column(Column::new(INPUT.into(), vec![i as u32; n]))
            .map_err(polars)?;
        part.with_column(Column::new(ROW.into(), (0..n as u32).collect::<Vec<_>>()))
            .map_err(polars)?;
        match &mut all {
            None => all = Some(part),
            Some(acc) => {
                acc.vstack_mut_owned(part).map_err(|e| {
                    source.error(format!("its columns differ from the first input file's: {e}"))
                })?;
            }
        }
    }
    let Some(all) = all else {
        return Ok(DataFrame::empty());
    };
    let group: Vec<String> = mapping.day_and_series();
    let group_exprs: Vec<Expr> = group.iter().map(|c| col(c.as_str())).collect();
    // Ordered by day, series and value: the sums do not depend on input order.
    let mut order = group.clone();
    order.push(mapping.target.clone());
    let sorted = all.sort(order, SortMultipleOptions::default()).map_err(polars)?;
    let distinct = |c: &String| format!("__salescast_distinct_{c}");
    let mut aggs = vec![col(mapping.target.as_str()).sum(), len().alias(COUNT)];
    for c in &mapping.covariates {
        aggs.push(col(c.as_str()).first());
        aggs.push(col(c.as_str()).n_unique().alias(distinct(c)));
    }
    let summed = sorted
        .clone()
        .lazy()
        .group_by_stable(group_exprs)
        .agg(aggs)
        .collect()
        .map_err(polars)?;
    for c in &mapping.covariates {
        let counts = summed
            .column(&distinct(c))
            .and_then(|n| n.cast(&DataType::UInt64))
            .map_err(polars)?;
        let counts = counts.u64().map_err(polars)?;
        if let Some(g) = counts.iter().position(|n| n.unwrap_or(0) > 1) {
            return Err(disagreement(&sorted, &summed, g, c, mapping, &sources));
        }
    }
    let target = summed
        .column(&mapping.target)
        .and_then(|t| t.f64().cloned())
        .map_err(polars)?;
    if let Some((g, value)) = target
        .iter()
        .enumerate()
        .find_map(|(g, v)| v.filter(|v| *v > MAX_SALES).map(|v| (g, v)))
    {
        let (day, series) = describe_group(&summed, g, mapping);
        return Err(DataError::column(
            all_names.name.clone(),
            &mapping.target,
            format!("day {day}, series {series}: the events sum to {value:e}, above the bound of 1e15 a day"),
        ));
    }
    summed.select(wanted.iter().copied()).map_err(polars)
}

/// The day and series of group `g` of a frame, for messages.
fn describe_group(frame: &DataFrame, g: usize, mapping: &DataMapping) -> (String, String) {
    let value = |c: &str| {
        frame
            .column(c)
            .ok()
            .and_then(|col| col.get(g).ok())
            .map(|v| match v {
                AnyValue::String(s) => s.to_string(),
                AnyValue::StringOwned(s) => s.to_string(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    let series: Vec<String> = mapping
        .series_keys
        .iter()
        .map(|k| format!("{k}={}", value(k)))
        .collect();
    (value(&mapping.date_column), series.join(", "))
}

/// The error for covariate `column` differing within group `g` of `summed`:
/// names the first event of the group and the first one that disagrees with it.
fn disagreement(
    sorted: &DataFrame,
    summed: &DataFrame,
    g: usize,
    column: &str,
    mapping: &DataMapping,
    sources: &[Source],
) -> DataError {
    let (day, series) = describe_group(summed, g, mapping);
    let general = || {
        DataError::column(
            sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            column,
            format!(
                "day {day}, series {series}: the events disagree on this covariate; with \
                 data.aggregate = \"sum\" the covariates of one day and series must be the same"
            ),
        )
    };
    // Group g is a run of `sorted` (same order); its events in input order.
    let Ok(counts) = summed.column(COUNT).and_then(|c| c.cast(&DataType::UInt64)) else {
        return general();
    };
    let Ok(counts) = counts.u64() else {
        return general();
    };
    let offset: u64 = counts.iter().take(g).map(|n| n.unwrap_or(0)).sum();
    let length = counts.get(g).unwrap_or(0);
    let rows = sorted
        .slice(offset as i64, length as usize)
        .lazy()
        .sort([INPUT, ROW], Default::default())
        .select([col(INPUT), col(ROW), col(column).cast(DataType::String)])
        .collect();
    let Ok(rows) = rows else { return general() };
    let (Ok(inputs), Ok(lines), Ok(values)) = (
        rows.column(INPUT).and_then(|c| c.u32().cloned()),
        rows.column(ROW).and_then(|c| c.u32().cloned()),
        rows.column(column).and_then(|c| c.str().cloned()),
    ) else {
        return general();
    };
    let first = values.get(0);
    let Some(other) = (1..values.len()).find(|&i| values.get(i) != first) else {
        return general();
    };
    let place = |i: usize| -> Option<(&Source, usize)> {
        let source = sources.get(inputs.get(i)? as usize)?;
        Some((source, lines.get(i)? as usize))
    };
    let (Some((first_source, first_row)), Some((other_source, other_row))) = (place(0), place(other)) else {
        return general();
    };
    let shown = |v: Option<&str>| v.map_or("empty".to_string(), |v| format!("{v:?}"));
    other_source.error_at(
        other_row,
        column,
        format!(
            "day {day}, series {series}: {} differs from {} at {}, {}; with data.aggregate = \"sum\" \
             the covariates of one day and series must be the same",
            shown(values.get(other)),
            shown(first),
            first_source.name,
            first_source.row(first_row)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn timestamps_are_utc_days() {
        assert_eq!(event_day("2015-07-31T10:22:01Z", "%Y-%m-%d"), day(2015, 7, 31));
        assert_eq!(
            event_day("2015-07-31T23:30:00-02:00", "%Y-%m-%d"),
            day(2015, 8, 1),
            "an offset moves the event to its UTC day"
        );
        assert_eq!(event_day("2015-07-31 23:59:59", "%Y-%m-%d"), day(2015, 7, 31));
        assert_eq!(event_day("2015-07-31 23:59:59.250", "%Y-%m-%d"), day(2015, 7, 31));
        assert_eq!(event_day("2015-07-31", "%Y-%m-%d"), day(2015, 7, 31));
        assert_eq!(event_day("31/07/2015", "%d/%m/%Y"), day(2015, 7, 31));
        assert_eq!(event_day("2015-02-30 10:00:00", "%Y-%m-%d"), None);
        assert_eq!(event_day("yesterday", "%Y-%m-%d"), None);
    }

    fn events(rows: &[(&str, &str, &str, &str)]) -> DataFrame {
        df!(
            "date" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "store" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "item" => vec!["a"; rows.len()],
            "sales" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "promo" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "holiday" => vec!["0"; rows.len()],
            "open" => vec!["1"; rows.len()],
        )
        .unwrap()
    }

    fn mapping() -> DataMapping {
        DataMapping {
            aggregate: crate::mapping::Aggregate::Sum,
            ..DataMapping::default()
        }
    }

    fn typed(df: DataFrame, name: &str) -> (DataFrame, Source) {
        let source = Source::with_lines(name, (1..=df.height()).collect());
        (
            crate::ingest::type_sales(df, &mapping(), chrono::NaiveDate::MAX, &source).unwrap(),
            source,
        )
    }

    #[test]
    fn events_sum_per_day_and_series_whatever_their_order() {
        let a = events(&[
            ("2020-01-01T09:00:00Z", "2", "1.5", "0"),
            ("2020-01-01 10:00:00", "1", "2", "1"),
            ("2020-01-02T08:00:00Z", "1", "4", "0"),
            ("2020-01-01T23:00:00Z", "1", "0.25", "1"),
        ]);
        let b = events(&[("2020-01-01T12:00:00Z", "2", "0.1", "0")]);
        let one = sum_events(vec![typed(a.clone(), "a"), typed(b.clone(), "b")], &mapping()).unwrap();
        assert_eq!(one.height(), 3);
        assert_eq!(
            one.get_column_names()
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            ["date", "store", "item", "sales", "promo", "holiday", "open"]
        );
        let sales: Vec<_> = one
            .column("sales")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(sales, [2.25, 1.6, 4.0]);
        let reversed = a.reverse();
        let two = sum_events(vec![typed(b, "b"), typed(reversed, "a")], &mapping()).unwrap();
        assert!(one.equals(&two), "{one}\n{two}");
    }

    #[test]
    fn a_covariate_that_differs_within_a_day_is_refused() {
        let a = events(&[
            ("2020-01-01T09:00:00Z", "1", "1", "0"),
            ("2020-01-01T10:00:00Z", "2", "1", "1"),
        ]);
        let b = events(&[("2020-01-01T09:30:00Z", "2", "1", "0")]);
        let err = sum_events(vec![typed(a, "a.jsonl"), typed(b, "b.jsonl")], &mapping()).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("b.jsonl, line 1, column \"promo\""), "{text}");
        assert!(
            text.contains("day 2020-01-01, series store=2, item=a") && text.contains("a.jsonl, line 2"),
            "{text}"
        );
    }
}
