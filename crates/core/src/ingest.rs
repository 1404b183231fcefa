//! Turning a user's flat file (CSV or Parquet) into clean, typed frames ready
//! for the lake: sales rows split by day, and static attribute tables.
//!
//! Everything is checked before anything is written: a file is accepted whole
//! or refused with a [`DataError`] naming the file, row and column.
//!
//! Types in the lake are fixed by the mapping, never guessed per file, so every
//! partition has the same schema: the date is a date, series keys and
//! categories are text, the target and numeric covariates are 64-bit floats,
//! and any other column is kept as text.

use std::path::Path;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::mapping::{AttributeTable, DataMapping};
use crate::validate::{self, DataError, Source};

/// Reads a CSV (every cell as text, typed later by the mapping) or Parquet file.
pub fn read_input(path: &Path) -> Result<(DataFrame, Source), DataError> {
    let name = path.display().to_string();
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let is_csv = match extension.as_deref() {
        Some("csv") => true,
        Some("parquet") | Some("pq") => false,
        _ => {
            return Err(DataError::file(
                name,
                "unsupported file type: expected a .csv or .parquet file",
            ));
        }
    };
    let source = Source::new(name.clone(), is_csv);
    if !path.is_file() {
        return Err(source.error("no such file"));
    }
    let df = if is_csv {
        read_csv(path, &source)?
    } else {
        read_parquet_file(path, &source)?
    };
    validate::require_rows(&df, &source)?;
    Ok((df, source))
}

fn read_csv(path: &Path, source: &Source) -> Result<DataFrame, DataError> {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(|e| match ragged_line(path) {
            Some((line, found, expected)) => DataError {
                row: Some(validate::RowRef::Line(line)),
                ..source.error(format!("the line has {found} fields, the header has {expected}"))
            },
            None => source.error(format!("not a readable CSV file: {}", first_line(&e))),
        })
}

/// The first line whose number of fields differs from the header's, as
/// (line, fields, header fields); polars' own message does not say where.
fn ragged_line(path: &Path) -> Option<(usize, usize, usize)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut fields_per_record = Vec::new();
    let (mut fields, mut quoted, mut line, mut record_line) = (1usize, false, 1usize, 1usize);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields += 1,
            '\n' if !quoted => {
                fields_per_record.push((record_line, fields));
                fields = 1;
                line += 1;
                record_line = line;
            }
            '\n' => line += 1,
            _ => {}
        }
    }
    if !text.ends_with('\n') && !text.is_empty() {
        fields_per_record.push((record_line, fields));
    }
    let (_, expected) = *fields_per_record.first()?;
    fields_per_record
        .into_iter()
        .find(|&(_, n)| n != expected)
        .map(|(line, n)| (line, n, expected))
}

fn read_parquet_file(path: &Path, source: &Source) -> Result<DataFrame, DataError> {
    let file = std::fs::File::open(path).map_err(|e| source.error(format!("cannot open: {e}")))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| source.error(format!("not a readable Parquet file: {}", first_line(&e))))
}

fn first_line(err: &PolarsError) -> String {
    err.to_string().lines().next().unwrap_or_default().to_string()
}

/// Types and checks a sales file: required columns, dates, keys, target and
/// covariates, no duplicate day and series. Returns the frame sorted by day
/// and series with the lake's column types.
pub fn clean_sales(df: DataFrame, mapping: &DataMapping, source: &Source) -> Result<DataFrame, DataError> {
    let required = std::iter::once(&mapping.date_column)
        .chain(&mapping.series_keys)
        .chain(std::iter::once(&mapping.target))
        .chain(&mapping.covariates);
    validate::require_columns(&df, required, source)?;
    let mut columns = Vec::with_capacity(df.width());
    for column in df.columns() {
        let name = column.name().as_str();
        let cleaned = if name == mapping.date_column {
            validate::parse_dates(column, &mapping.date_format, source)?
        } else if mapping.series_keys.iter().any(|k| k == name) {
            let keys = validate::to_text(column, source)?;
            validate::require_values(&keys, "series key", source)?;
            keys
        } else if name == mapping.target {
            let target = validate::parse_numbers(column, source)?;
            validate::check_target(&target, source)?;
            target
        } else if mapping.covariates.iter().any(|c| c == name) {
            clean_covariate(column, mapping, source)?
        } else {
            validate::to_text(column, source)?
        };
        columns.push(cleaned);
    }
    let df = DataFrame::new_infer_height(columns).map_err(|e| source.error(e.to_string()))?;
    let day_and_series = mapping.day_and_series();
    validate::check_unique(&df, &day_and_series, source)?;
    df.sort(day_and_series, SortMultipleOptions::default())
        .map_err(|e| source.error(e.to_string()))
}

fn clean_covariate(column: &Column, mapping: &DataMapping, source: &Source) -> Result<Column, DataError> {
    let name = column.name().as_str();
    if mapping.categorical.iter().any(|c| c == name) {
        return validate::to_text(column, source);
    }
    let numbers = validate::parse_numbers(column, source)?;
    validate::require_values(&numbers, "covariate", source)?;
    if mapping.open_flag.as_deref() == Some(name) {
        let flags = numbers.f64().map_err(|e| source.error(e.to_string()))?;
        if let Some(i) = flags
            .iter()
            .position(|v| !matches!(v, Some(f) if f == 0.0 || f == 1.0))
        {
            return Err(source.error_at(i, name, "the open flag must be 0 or 1"));
        }
    }
    Ok(numbers)
}

/// Splits a cleaned, day-sorted frame into one frame per day.
pub fn split_days(df: &DataFrame, date_column: &str) -> PolarsResult<Vec<(NaiveDate, DataFrame)>> {
    let dates = df.column(date_column)?.date()?.clone();
    let mut days = Vec::new();
    let mut start = 0usize;
    let physical: Vec<Option<i32>> = dates.physical().iter().collect();
    for i in 1..=physical.len() {
        if i == physical.len() || physical[i] != physical[start] {
            let day = physical[start]
                .map(date_from_days)
                .ok_or_else(|| polars_err!(ComputeError: "empty date"))?;
            days.push((day, df.slice(start as i64, i - start)));
            start = i;
        }
    }
    Ok(days)
}

/// Days since 1970-01-01, as polars stores dates, to a calendar date.
pub fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + 719_163).expect("date within chrono's range")
}

/// A calendar date to polars' days since 1970-01-01.
pub fn days_from_date(day: NaiveDate) -> i32 {
    use chrono::Datelike;
    day.num_days_from_ce() - 719_163
}

/// Types and checks a static attribute table: its join keys present, unique
/// and non-empty; numeric attributes numbers (empty allowed), categories text.
pub fn clean_attributes(
    df: DataFrame,
    table: &AttributeTable,
    mapping: &DataMapping,
    source: &Source,
) -> Result<DataFrame, DataError> {
    validate::require_columns(&df, table.join_keys.iter().chain(&table.columns), source)?;
    let mut columns = Vec::with_capacity(df.width());
    for column in df.columns() {
        let name = column.name().as_str();
        let cleaned = if table.join_keys.iter().any(|k| k == name) {
            let keys = validate::to_text(column, source)?;
            validate::require_values(&keys, "join key", source)?;
            keys
        } else if table.columns.iter().any(|c| c == name) && !mapping.categorical.iter().any(|c| c == name) {
            validate::parse_numbers(column, source)?
        } else {
            validate::to_text(column, source)?
        };
        columns.push(cleaned);
    }
    let df = DataFrame::new_infer_height(columns).map_err(|e| source.error(e.to_string()))?;
    validate::check_unique(&df, &table.join_keys, source).map_err(|mut e| {
        e.problem = e.problem.replace("same day and series", "same join key");
        e
    })?;
    df.sort(table.join_keys.clone(), SortMultipleOptions::default())
        .map_err(|e| source.error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polars_day_numbers_round_trip() {
        let day = NaiveDate::from_ymd_opt(2015, 7, 31).unwrap();
        assert_eq!(date_from_days(days_from_date(day)), day);
        assert_eq!(days_from_date(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()), 0);
    }

    #[test]
    fn sales_are_typed_sorted_and_split_by_day() {
        let df = df!(
            "date" => ["2020-01-02", "2020-01-01", "2020-01-01"],
            "store" => ["1", "2", "1"],
            "item" => ["a", "a", "a"],
            "sales" => ["3", "2", "1"],
            "promo" => ["0", "1", "0"],
            "holiday" => ["0", "0", "a"],
            "open" => ["1", "1", "1"],
            "note" => ["x", "y", "z"],
        )
        .unwrap();
        let mapping = DataMapping::default();
        let clean = clean_sales(df, &mapping, &Source::new("t.csv", true)).unwrap();
        assert_eq!(clean.column("sales").unwrap().dtype(), &DataType::Float64);
        assert_eq!(clean.column("date").unwrap().dtype(), &DataType::Date);
        let days = split_days(&clean, "date").unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].1.height(), 2);
        assert_eq!(
            days[0].1.column("store").unwrap().str().unwrap().get(0),
            Some("1")
        );
    }

    #[test]
    fn open_flag_must_be_zero_or_one() {
        let df = df!(
            "date" => ["2020-01-01"], "store" => ["1"], "item" => ["a"], "sales" => ["1"],
            "promo" => ["0"], "holiday" => ["0"], "open" => ["2"],
        )
        .unwrap();
        let err = clean_sales(df, &DataMapping::default(), &Source::new("t.csv", true)).unwrap_err();
        assert!(err.to_string().contains("open flag"), "{err}");
    }
}
