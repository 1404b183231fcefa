//! Turning a user's flat file (CSV or Parquet) into clean, typed frames ready
//! for the lake: sales rows split by day, and static attribute tables. (Where
//! files come from and their other formats: `input`; plans: `plans`.)
//!
//! Everything is checked before anything is written: a file is accepted whole
//! or refused with a [`DataError`] naming the file, row and column.
//!
//! Types in the lake are fixed by the mapping, never guessed per file, so every
//! partition has the same schema: the date is a date, series keys and
//! categories are text, the target and numeric covariates are 64-bit floats,
//! and any other column is kept as text.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::events;
use crate::mapping::{Aggregate, AttributeTable, DataMapping};
use crate::scan::{Layout, Scanner};
use crate::validate::{self, DataError, RowLines, Source};

/// Reads a CSV (every cell as text, typed later by the mapping) or Parquet
/// file. A CSV file is scanned first: a record longer than `max_line_bytes`
/// is refused before polars sees it.
pub fn read_input(path: &Path, max_line_bytes: usize) -> Result<(DataFrame, Source), DataError> {
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
    let mut source = Source::new(name.clone(), is_csv);
    if !path.is_file() {
        return Err(source.error("no such file"));
    }
    let df = if is_csv {
        source = Source::csv_with_lines(name.clone(), scan_csv_file(path, max_line_bytes, &name)?);
        read_csv(path, &source)?
    } else {
        read_parquet_file(path, &source)?
    };
    validate::require_rows(&df, &source)?;
    Ok((df, source))
}

/// Scans a CSV file on disk (see `scan`): refuses a record longer than
/// `max_line_bytes`, else returns the line each row starts on.
fn scan_csv_file(path: &Path, max_line_bytes: usize, name: &str) -> Result<RowLines, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::file(name, format!("cannot open: {e}")))?;
    let mut scanner = Scanner::new(Layout::Csv, max_line_bytes);
    scanner
        .read_all(file, None)
        .map_err(|e| e.into_error(name, "cannot read"))?;
    Ok(scanner.finish())
}

fn csv_options() -> CsvReadOptions {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(true)
}

fn read_csv(path: &Path, source: &Source) -> Result<DataFrame, DataError> {
    let read = csv_options()
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish());
    csv_outcome(
        read,
        || std::fs::File::open(path).ok().and_then(ragged_record),
        || std::fs::File::open(path).ok().and_then(repeated_header),
        source,
    )
}

/// Reads CSV text held in memory (a decompressed or downloaded file), every
/// cell as text, with the same messages as a CSV file on disk (its rows
/// named by the lines `source` has from the scan).
pub fn read_csv_bytes(bytes: &[u8], source: &Source) -> Result<DataFrame, DataError> {
    let read = csv_options()
        .into_reader_with_file_handle(std::io::Cursor::new(bytes))
        .finish();
    csv_outcome(
        read,
        || ragged_record(std::io::Cursor::new(bytes)),
        || repeated_header(std::io::Cursor::new(bytes)),
        source,
    )
}

/// Reads a Parquet file held in memory.
pub fn read_parquet_bytes(bytes: &[u8], source: &Source) -> Result<DataFrame, DataError> {
    crate::parquet_guard::decode(|| ParquetReader::new(std::io::Cursor::new(bytes)).finish())
        .map_err(|e| source.error(format!("not a readable Parquet file: {}", first_line(&e))))
}

/// The frame polars read, or a message naming the ragged record that made
/// it fail (polars' own message does not say where).
fn csv_outcome(
    read: PolarsResult<DataFrame>,
    ragged: impl FnOnce() -> Option<Ragged>,
    repeated: impl FnOnce() -> Option<String>,
    source: &Source,
) -> Result<DataFrame, DataError> {
    let df = read.map_err(|e| match ragged() {
        Some(ragged) => DataError {
            row: Some(validate::RowRef::Line(ragged.line)),
            ..source.error(format!(
                "the line has {} fields, the header has {}",
                ragged.fields, ragged.header_fields
            ))
        },
        None => source.error(format!("not a readable CSV file: {}", first_line(&e))),
    })?;
    // polars keeps both copies of a name, the second renamed, and the
    // mapping would read only the first.
    if let Some(name) = repeated() {
        return Err(DataError {
            row: Some(validate::RowRef::Line(1)),
            ..source.error(format!("the header names column {name:?} more than once"))
        });
    }
    Ok(df)
}

/// The first name the header record repeats, if any.
fn repeated_header<R: Read>(input: R) -> Option<String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
    let headers = reader.byte_headers().ok()?;
    let mut seen = std::collections::HashSet::new();
    headers
        .iter()
        .find(|name| !seen.insert(*name))
        .map(|name| String::from_utf8_lossy(name).into_owned())
}

/// A record whose number of fields differs from the header's.
#[derive(Debug, PartialEq, Eq)]
struct Ragged {
    /// The line the record starts on (the header is line 1), counting the
    /// newlines inside quoted fields of earlier records.
    line: usize,
    fields: usize,
    header_fields: usize,
}

/// The first ragged record of a CSV file, found by the `csv` crate after
/// polars refused the file (polars' own message does not say where). `None`
/// when every record has the header's width or the text is not CSV at all.
fn ragged_record<R: Read + Seek>(input: R) -> Option<Ragged> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
    let mut record = csv::ByteRecord::new();
    let (pos, len, expected_len) = loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(err) => match err.kind() {
                csv::ErrorKind::UnequalLengths {
                    pos: Some(pos),
                    expected_len,
                    len,
                } => break (pos.clone(), *len, *expected_len),
                _ => return None,
            },
        }
    };
    Some(Ragged {
        line: usize::try_from(first_line_of_record(reader.into_inner(), &pos)?).ok()?,
        fields: usize::try_from(len).ok()?,
        header_fields: usize::try_from(expected_len).ok()?,
    })
}

/// The line a record really starts on. csv's record position is where the
/// reader stood when it began the record: before any blank lines it skips,
/// and with CRLF endings on the previous line's `\n`, one line early
/// (BurntSushi/rust-csv#395). Steps over those line ends from that byte.
fn first_line_of_record(mut input: impl Read + Seek, pos: &csv::Position) -> Option<u64> {
    input.seek(SeekFrom::Start(pos.byte())).ok()?;
    let mut line = pos.line();
    for byte in BufReader::new(input).bytes() {
        match byte.ok()? {
            b'\n' => line += 1,
            b'\r' => {}
            _ => break,
        }
    }
    Some(line)
}

fn read_parquet_file(path: &Path, source: &Source) -> Result<DataFrame, DataError> {
    let file = std::fs::File::open(path).map_err(|e| source.error(format!("cannot open: {e}")))?;
    crate::parquet_guard::decode(|| ParquetReader::new(file).finish())
        .map_err(|e| source.error(format!("not a readable Parquet file: {}", first_line(&e))))
}

fn first_line(err: &PolarsError) -> String {
    err.to_string().lines().next().unwrap_or_default().to_string()
}

/// Types and checks a sales file: required columns, dates (none after
/// `latest`), keys, target and covariates, no duplicate day and series.
/// Returns the frame sorted by day and series with the lake's column types.
pub fn clean_sales(
    df: DataFrame,
    mapping: &DataMapping,
    latest: NaiveDate,
    source: &Source,
) -> Result<DataFrame, DataError> {
    let df = type_sales(df, mapping, latest, source)?;
    unique_and_sorted(df, mapping, source)
}

/// The row checks of [`clean_sales`] without the one-row-per-day-and-series
/// check: what events get before they are summed (`data.aggregate = "sum"`).
pub fn type_sales(
    df: DataFrame,
    mapping: &DataMapping,
    latest: NaiveDate,
    source: &Source,
) -> Result<DataFrame, DataError> {
    let required = std::iter::once(&mapping.date_column)
        .chain(&mapping.series_keys)
        .chain(std::iter::once(&mapping.target))
        .chain(&mapping.covariates);
    validate::require_columns(&df, required, source)?;
    let df = type_columns(df, mapping, source)?;
    no_day_after(&df, &mapping.date_column, latest, source)?;
    Ok(df)
}

/// The newest day a sales row may carry when ingested at `now`: tomorrow in
/// UTC (a store east of UTC may be a day ahead). Later days are no sales yet:
/// a mistyped year (2105 for 2015) would otherwise land in the lake unseen.
pub fn latest_sales_day(now: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    now.date_naive() + chrono::Days::new(1)
}

/// Refuses the first row dated after `latest`, naming its line.
fn no_day_after(df: &DataFrame, column: &str, latest: NaiveDate, source: &Source) -> Result<(), DataError> {
    let dates = df
        .column(column)
        .and_then(|c| c.date())
        .map_err(|e| source.error(e.to_string()))?;
    let limit = days_from_date(latest);
    let late =
        (dates.physical().iter().enumerate()).find_map(|(i, d)| d.filter(|&d| d > limit).map(|d| (i, d)));
    match late {
        Some((i, days)) => {
            let day = date_from_days(days).map_or_else(|| "the date".to_string(), |d| d.to_string());
            Err(source.error_at(
                i,
                column,
                format!("{day} is in the future (after {latest}, tomorrow in UTC): check its year"),
            ))
        }
        None => Ok(()),
    }
}

/// Types and checks every column by its role in the mapping (the date, a
/// series key, the target, a covariate, anything else as text); the
/// required columns are the caller's to check.
pub fn type_columns(df: DataFrame, mapping: &DataMapping, source: &Source) -> Result<DataFrame, DataError> {
    let mut columns = Vec::with_capacity(df.width());
    for column in df.columns() {
        let name = column.name().as_str();
        let cleaned = if name == mapping.date_column {
            match mapping.aggregate {
                Aggregate::None => validate::parse_dates(column, &mapping.date_format, source)?,
                Aggregate::Sum => events::parse_event_days(column, &mapping.date_format, source)?,
            }
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
    DataFrame::new_infer_height(columns).map_err(|e| source.error(e.to_string()))
}

/// Refuses two rows of one day and series (naming both), then sorts by day
/// and series.
pub fn unique_and_sorted(
    df: DataFrame,
    mapping: &DataMapping,
    source: &Source,
) -> Result<DataFrame, DataError> {
    let day_and_series = mapping.day_and_series();
    validate::check_unique(&df, &day_and_series, "day and series", source)?;
    df.sort(day_and_series, SortMultipleOptions::default())
        .map_err(|e| source.error(e.to_string()))
}

/// The largest magnitude of a numeric covariate: larger values are no real
/// price, count or flag, and overflow the features (a plan's 1.7e308 made
/// a forecast of 0).
pub const MAX_COVARIATE: f64 = 1e15;

fn clean_covariate(column: &Column, mapping: &DataMapping, source: &Source) -> Result<Column, DataError> {
    let name = column.name().as_str();
    if mapping.categorical.iter().any(|c| c == name) {
        return validate::to_text(column, source);
    }
    let numbers = validate::parse_numbers(column, source)?;
    validate::require_values(&numbers, "covariate", source)?;
    let values = numbers.f64().map_err(|e| source.error(e.to_string()))?;
    if let Some((i, value)) = values
        .iter()
        .enumerate()
        .find_map(|(i, v)| v.filter(|v| v.abs() > MAX_COVARIATE).map(|v| (i, v)))
    {
        return Err(source.error_at(
            i,
            name,
            format!("{value:e} is beyond the bound of ±1e15 for a covariate (the features would overflow)"),
        ));
    }
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
                .ok_or_else(|| polars_err!(ComputeError: "empty date"))
                .and_then(|d| {
                    date_from_days(d).ok_or_else(|| polars_err!(ComputeError: "date {d} out of range"))
                })?;
            days.push((day, df.slice(start as i64, i - start)));
            start = i;
        }
    }
    Ok(days)
}

/// Days since 1970-01-01, as polars stores dates, to a calendar date; `None`
/// beyond chrono's range (about 262,000 years either side).
pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_epoch_days(days)
}

/// A calendar date to polars' days since 1970-01-01 (every date chrono can
/// hold has one).
pub fn days_from_date(day: NaiveDate) -> i32 {
    day.to_epoch_days()
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
    validate::check_unique(&df, &table.join_keys, "join key", source)?;
    df.sort(table.join_keys.clone(), SortMultipleOptions::default())
        .map_err(|e| source.error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ragged_record_is_found_at_its_own_line() {
        let ragged = |text: &str| {
            ragged_record(std::io::Cursor::new(text.as_bytes())).map(|r| (r.line, r.fields, r.header_fields))
        };
        assert_eq!(
            ragged("a,b,c\n1,2,3\n4,\"two\nlines\",6\n7,8,9,10\n"),
            Some((5, 4, 3)),
            "the quoted newline of line 3 moves the ragged record to line 5"
        );
        let crlf = "a,b,c\r\n1,2,3\r\n4,\"two\r\nlines\",6\r\n7,8,9,10\r\n";
        assert_eq!(ragged(crlf), Some((5, 4, 3)), "CRLF line ends count once");
        assert_eq!(
            ragged("a,b\n1,2\n\n\n3\n"),
            Some((5, 1, 2)),
            "blank lines are skipped"
        );
        assert_eq!(ragged("a,b\r\n1,2\r\n\r\n3\r\n"), Some((4, 1, 2)));
        assert_eq!(ragged("a,b\n1\n"), Some((2, 1, 2)), "the first record");
        assert_eq!(ragged("a,b\n1,\"x,y\"\n"), None);
        assert_eq!(ragged(""), None);
    }

    #[test]
    fn a_header_naming_a_column_twice_is_refused() {
        let source = Source::new("s.csv", true);
        let err = read_csv_bytes(b"date,store,date,sales\n2020-01-01,a,2020-01-02,1\n", &source).unwrap_err();
        assert!(
            err.to_string().contains("names column \"date\" more than once"),
            "{err}"
        );
        assert!(err.to_string().contains("line 1"), "{err}");
        let named_so = read_csv_bytes(b"date,store,store_duplicated_0\n2020-01-01,a,b\n", &source);
        assert!(named_so.is_ok(), "a column may be named so: {named_so:?}");
    }

    #[test]
    fn polars_day_numbers_round_trip() {
        let day = NaiveDate::from_ymd_opt(2015, 7, 31).unwrap();
        assert_eq!(date_from_days(days_from_date(day)), Some(day));
        assert_eq!(days_from_date(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()), 0);
        assert_eq!(days_from_date(day), 16_647);
        assert_eq!(date_from_days(-1), NaiveDate::from_ymd_opt(1969, 12, 31));
        assert_eq!(
            date_from_days(i32::MAX),
            None,
            "out of range is None, not a panic"
        );
        assert_eq!(date_from_days(i32::MIN), None);
        assert_eq!(
            date_from_days(days_from_date(NaiveDate::MAX)),
            Some(NaiveDate::MAX)
        );
        assert_eq!(
            date_from_days(days_from_date(NaiveDate::MIN)),
            Some(NaiveDate::MIN)
        );
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
        let clean = clean_sales(df, &mapping, NaiveDate::MAX, &Source::new("t.csv", true)).unwrap();
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
        let err = clean_sales(
            df,
            &DataMapping::default(),
            NaiveDate::MAX,
            &Source::new("t.csv", true),
        )
        .unwrap_err();
        assert!(err.to_string().contains("open flag"), "{err}");
    }

    #[test]
    fn a_covariate_beyond_the_bound_is_refused_naming_its_column() {
        let clean = |promo: &str| {
            let df = df!(
                "date" => ["2020-01-01"], "store" => ["1"], "item" => ["a"], "sales" => ["1"],
                "promo" => [promo], "holiday" => ["0"], "open" => ["1"],
            )
            .unwrap();
            clean_sales(
                df,
                &DataMapping::default(),
                NaiveDate::MAX,
                &Source::new("t.csv", true),
            )
        };
        for bad in ["1.7e308", "-2e15"] {
            let err = clean(bad).unwrap_err().to_string();
            assert!(err.contains("promo") && err.contains("1e15"), "{bad}: {err}");
        }
        assert!(clean("1e15").is_ok());
    }

    #[test]
    fn a_sales_day_after_tomorrow_is_refused_naming_its_line() {
        let now = "2026-12-06T23:59:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap();
        let latest = latest_sales_day(now);
        assert_eq!(latest.to_string(), "2026-12-07");
        let clean = |day: &str| {
            let df = df!(
                "date" => ["2026-12-01", day], "store" => ["1", "1"], "item" => ["a", "b"], "sales" => ["1", "2"],
                "promo" => ["0", "0"], "holiday" => ["0", "0"], "open" => ["1", "1"],
            )
            .unwrap();
            clean_sales(df, &DataMapping::default(), latest, &Source::new("t.csv", true))
        };
        assert!(clean("2026-12-07").is_ok(), "tomorrow in UTC is accepted");
        let err = clean("2026-12-08").unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("2026-12-08 is in the future (after 2026-12-07"),
            "{err}"
        );
    }
}
