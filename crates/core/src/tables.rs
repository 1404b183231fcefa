//! The tables joined onto sales rows, once read: attribute tables (by series
//! keys, joined in `features`) and calendar tables (by date, and optionally
//! an attribute column; joined here). Kept apart from `calendar`, which reads
//! and writes the lake, so that `features` depends on no storage.

use polars::prelude::*;

use crate::mapping::{AttributeTable, CalendarTable, DataMapping};

/// The tables joined onto sales rows, read: attribute tables (by series
/// keys) and calendar tables (by date).
#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub attributes: Vec<(AttributeTable, DataFrame)>,
    pub calendars: Vec<(CalendarTable, DataFrame)>,
    /// Every table read, in order: part of the data's fingerprint (a table
    /// ingested again with other rows is other data).
    pub digests: Vec<TableDigest>,
}

/// A table as read from the lake: its key and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDigest {
    pub key: String,
    pub sha256: String,
}

impl TableDigest {
    pub fn of(key: String, bytes: &[u8]) -> Self {
        Self {
            sha256: crate::digest::sha256_hex(bytes),
            key,
        }
    }
}

impl Tables {
    /// Attribute tables only.
    pub fn attributes(attributes: Vec<(AttributeTable, DataFrame)>) -> Self {
        Self {
            attributes,
            ..Self::default()
        }
    }
}

/// For each attribute table, the series of `sales` it has no row for (their
/// attributes are missing, so the features see nulls): the table's name, how
/// many key combinations, and the first of them ("/"-joined). A table that
/// lacks a store ingested later is easy to miss; runs go on, and say so.
pub fn unmatched_attributes(
    sales: &DataFrame,
    tables: &Tables,
) -> PolarsResult<Vec<(String, usize, String)>> {
    let mut found = Vec::new();
    for (table, df) in &tables.attributes {
        let on: Vec<Expr> = table.join_keys.iter().map(|k| col(k.as_str())).collect();
        let missing = sales
            .clone()
            .lazy()
            .select(on.clone())
            .unique(None, UniqueKeepStrategy::Any)
            .join(
                df.clone().lazy().select(on.clone()),
                on.clone(),
                on,
                JoinArgs::new(JoinType::Anti),
            )
            .sort(table.join_keys.clone(), SortMultipleOptions::default())
            .collect()?;
        if missing.height() > 0 {
            let first = missing
                .columns()
                .iter()
                .map(|c| c.get(0).map(|v| v.str_value().to_string()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("/");
            found.push((table.table.clone(), missing.height(), first));
        }
    }
    Ok(found)
}

/// Left-joins every calendar of the mapping onto `frame` by the row's date
/// (and its `by` attribute column, already joined), filling days the table
/// does not hold with 0 (flag and numbers) or null (categories).
pub fn join_calendars(
    mut frame: LazyFrame,
    calendars: &[(CalendarTable, DataFrame)],
    mapping: &DataMapping,
) -> PolarsResult<LazyFrame> {
    let date = mapping.date_column.as_str();
    for calendar in &mapping.calendars {
        let Some((_, table)) = calendars.iter().find(|(c, _)| c.name == calendar.name) else {
            polars_bail!(ComputeError: "calendar table {:?} was not read", calendar.name);
        };
        let mut select = vec![col(calendar.date_column.as_str()).alias(date)];
        let mut on = vec![col(date)];
        if let (Some(by), Some(by_column)) = (&calendar.by, calendar.by_column()) {
            select.push(col(by_column).alias(by.as_str()));
            on.push(col(by.as_str()));
        }
        let mut zero = Vec::new();
        if let Some(flag) = &calendar.flag {
            select.push(lit(1.0).alias(flag.as_str()));
            zero.push(flag);
        }
        for column in &calendar.columns {
            select.push(col(column.as_str()));
            if !mapping.categorical.contains(column) {
                zero.push(column);
            }
        }
        frame = frame
            .join(
                table.clone().lazy().select(select),
                on.clone(),
                on,
                JoinArgs::new(JoinType::Left),
            )
            .with_columns(
                zero.iter()
                    .map(|c| col(c.as_str()).fill_null(lit(0.0)))
                    .collect::<Vec<_>>(),
            );
    }
    Ok(frame)
}
