//! Validation of input data before anything is written or trained: each check
//! refuses with a [`DataError`] that names the file, the row and the column.
//!
//! Rows are counted the way a person opening the file would: `line N` for CSV
//! (the header is line 1), `row N` (from 1) for Parquet.

use std::fmt;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// Limits that decide when input data is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationSettings {
    /// A day with fewer series than this share of the window's median count
    /// is thin: refused if it is the newest day of a run, else as `history` says.
    pub min_series_ratio: f64,
    /// What a thin day older than a run's newest day does.
    pub history: HistoryPolicy,
    /// The longest line an input file may hold, in bytes, its line end not
    /// counted: a file with a longer one is refused before it is parsed
    /// (exit 3, naming the line). In a CSV file the bound applies to a
    /// record, which a quoted field may spread over several lines, named by
    /// the line it starts on; in a JSON file, to each physical line.
    pub max_line_bytes: usize,
}

/// What a thin day in the history (older than the run's newest day) does
/// (`validation.history`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryPolicy {
    /// Warned about and recorded in the run's report; the run goes on.
    #[default]
    Report,
    /// Refused (exit 3), every thin day named.
    Refuse,
}

/// How many failing days or files one message lists before "and N more".
pub const LISTED: usize = 20;

/// `items` joined by `separator`: at most [`LISTED`], then how many more.
pub fn listed(items: &[String], separator: &str) -> String {
    let mut text = items
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(separator);
    if items.len() > LISTED {
        text += &format!("{separator}and {} more", items.len() - LISTED);
    }
    text
}

/// The largest `validation.max_line_bytes` accepted (1 GiB): a line is read
/// into memory whole.
pub const MAX_LINE_BYTES_LIMIT: usize = 1 << 30;

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            min_series_ratio: 0.5,
            history: HistoryPolicy::Report,
            max_line_bytes: 1 << 20,
        }
    }
}

impl ValidationSettings {
    pub fn check(&self) -> Result<(), crate::setting::Invalid> {
        if !(0.0..=1.0).contains(&self.min_series_ratio) {
            return Err(crate::setting::invalid(
                "validation.min_series_ratio",
                "must be between 0 and 1",
            ));
        }
        if !(1..=MAX_LINE_BYTES_LIMIT).contains(&self.max_line_bytes) {
            return Err(crate::setting::invalid(
                "validation.max_line_bytes",
                format!("must be between 1 and {MAX_LINE_BYTES_LIMIT} (1 GiB)"),
            ));
        }
        Ok(())
    }
}

/// Input data that salescast refuses. Exit code 3.
#[derive(Debug, thiserror::Error)]
pub struct DataError {
    pub file: String,
    pub row: Option<RowRef>,
    pub column: Option<String>,
    pub problem: String,
}

impl DataError {
    /// A problem with a whole file or partition.
    pub fn file(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            row: None,
            column: None,
            problem: problem.into(),
        }
    }

    pub fn column(file: impl Into<String>, column: &str, problem: impl Into<String>) -> Self {
        Self {
            column: Some(column.to_string()),
            ..Self::file(file, problem)
        }
    }
}

impl DataError {
    /// Every refusal of one step (each file's first problem) as one error:
    /// none is `Ok`, one is itself, several are listed a line each under
    /// `what` ("input files"), at most [`LISTED`].
    pub fn all(errors: Vec<DataError>, what: &str) -> Result<(), DataError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.into_iter().next().expect("one error")),
            n => {
                let lines: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
                Err(Self::file(
                    format!("{n} {what}"),
                    format!("refused, the first problem of each:\n{}", listed(&lines, "\n")),
                ))
            }
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(row) = &self.row {
            write!(f, ", {row}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column {column:?}")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// Where a row is, in the numbering its file's readers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowRef {
    /// A CSV line; the header is line 1.
    Line(usize),
    /// A 1-based row of a Parquet file.
    Row(usize),
}

impl fmt::Display for RowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowRef::Line(n) => write!(f, "line {n}"),
            RowRef::Row(n) => write!(f, "row {n}"),
        }
    }
}

/// The line each row of a file starts on, kept as the rows where the
/// numbering jumps (a quoted CSV field holding line breaks, blank lines):
/// row `i` after a jump at `(row, line)` starts on `line + i - row`, and
/// before any jump on `first + i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowLines {
    first: usize,
    jumps: Vec<(usize, usize)>,
    rows: usize,
}

impl RowLines {
    /// Rows that start on `first`, `first + 1`, ... until a jump.
    pub fn new(first: usize) -> Self {
        Self {
            first,
            jumps: Vec::new(),
            rows: 0,
        }
    }

    /// The next row starts on `line`.
    pub fn push(&mut self, line: usize) {
        if line != self.line(self.rows) {
            self.jumps.push((self.rows, line));
        }
        self.rows += 1;
    }

    /// How many rows were pushed.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The line row `index` (from 0) starts on.
    pub fn line(&self, index: usize) -> usize {
        let after = self.jumps.partition_point(|(row, _)| *row <= index);
        match after.checked_sub(1).and_then(|i| self.jumps.get(i)) {
            Some((row, line)) => line + (index - row),
            None => self.first + index,
        }
    }
}

/// The file a frame was read from, for messages.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub is_csv: bool,
    /// The line each row starts on, for files whose rows do not follow from
    /// their index (newline-delimited JSON, with blank lines or several
    /// objects on one line; CSV with line breaks in quoted fields).
    lines: Option<std::sync::Arc<RowLines>>,
}

impl Source {
    pub fn new(name: impl Into<String>, is_csv: bool) -> Self {
        Self {
            name: name.into(),
            is_csv,
            lines: None,
        }
    }

    /// A file whose row `i` starts on line `lines[i]` (from 1).
    pub fn with_lines(name: impl Into<String>, lines: Vec<usize>) -> Self {
        let mut rows = RowLines::new(1);
        for line in lines {
            rows.push(line);
        }
        Self {
            lines: Some(rows.into()),
            ..Self::new(name, false)
        }
    }

    /// A CSV file whose rows start on the lines `lines` says.
    pub fn csv_with_lines(name: impl Into<String>, lines: RowLines) -> Self {
        Self {
            lines: Some(lines.into()),
            ..Self::new(name, true)
        }
    }

    /// The row reference of the frame's 0-based row `index`.
    pub fn row(&self, index: usize) -> RowRef {
        if let Some(lines) = &self.lines {
            RowRef::Line(lines.line(index))
        } else if self.is_csv {
            RowRef::Line(index + 2)
        } else {
            RowRef::Row(index + 1)
        }
    }

    pub fn error_at(&self, index: usize, column: &str, problem: impl Into<String>) -> DataError {
        DataError {
            file: self.name.clone(),
            row: Some(self.row(index)),
            column: Some(column.to_string()),
            problem: problem.into(),
        }
    }

    pub fn error(&self, problem: impl Into<String>) -> DataError {
        DataError::file(self.name.clone(), problem)
    }
}

/// Polars failures while checking data are reported against the file.
fn polars_error(source: &Source, err: PolarsError) -> DataError {
    source.error(format!("cannot process: {err}"))
}

/// Every named column must be present.
pub fn require_columns<'a>(
    df: &DataFrame,
    columns: impl IntoIterator<Item = &'a String>,
    source: &Source,
) -> Result<(), DataError> {
    for column in columns {
        if df.column(column).is_err() {
            let found: Vec<_> = df.get_column_names().iter().map(|c| c.to_string()).collect();
            return Err(DataError::column(
                source.name.clone(),
                column,
                format!("required column is missing (found: {})", found.join(", ")),
            ));
        }
    }
    Ok(())
}

pub fn require_rows(df: &DataFrame, source: &Source) -> Result<(), DataError> {
    if df.height() == 0 {
        return Err(source.error("no data rows"));
    }
    Ok(())
}

/// The 0-based index of the first row where `input` had a value and `output` has none.
fn first_lost(input: &Column, output: &Column) -> Option<usize> {
    let lost = input.is_not_null() & output.is_null();
    lost.iter().position(|v| v == Some(true))
}

fn first_null(column: &Column) -> Option<usize> {
    column.is_null().iter().position(|v| v == Some(true))
}

fn value_at(column: &Column, index: usize) -> String {
    match column.get(index) {
        Ok(AnyValue::String(s)) => format!("{s:?}"),
        Ok(AnyValue::StringOwned(s)) => format!("{:?}", s.as_str()),
        Ok(v) => v.to_string(),
        Err(_) => "?".into(),
    }
}

/// Parses a date column (text in `format`, or a date or datetime already) with no nulls.
pub fn parse_dates(column: &Column, format: &str, source: &Source) -> Result<Column, DataError> {
    let name = column.name().to_string();
    let parsed = match column.dtype() {
        DataType::String => column
            .str()
            .and_then(|s| s.as_date(Some(format), true))
            .map(|d| d.into_column())
            .map_err(|e| source.error(format!("column {name:?}: bad date format {format:?}: {e}")))?,
        DataType::Date => column.clone(),
        DataType::Datetime(_, _) => column
            .cast(&DataType::Date)
            .map_err(|e| polars_error(source, e))?,
        other => {
            return Err(DataError::column(
                source.name.clone(),
                &name,
                format!("expected dates, found a column of type {other}"),
            ));
        }
    };
    if let Some(i) = first_lost(column, &parsed) {
        let value = value_at(column, i);
        return Err(source.error_at(i, &name, format!("{value} is not a date in format {format:?}")));
    }
    if let Some(i) = first_null(&parsed) {
        return Err(source.error_at(i, &name, "the date is empty"));
    }
    Ok(parsed.with_name(name.into()))
}

/// Converts a column to finite 64-bit floats; empty cells stay null.
pub fn parse_numbers(column: &Column, source: &Source) -> Result<Column, DataError> {
    let name = column.name().to_string();
    let dtype = column.dtype();
    if !(dtype.is_primitive_numeric() || dtype.is_bool() || dtype == &DataType::String || dtype.is_null()) {
        return Err(DataError::column(
            source.name.clone(),
            &name,
            format!("expected numbers, found a column of type {dtype}"),
        ));
    }
    let text = if dtype == &DataType::String {
        // Tolerate spaces around numbers, as spreadsheets write them.
        column
            .str()
            .map(|s| s.apply_values(|v| v.trim().into()).into_column())
            .map_err(|e| polars_error(source, e))?
    } else {
        column.clone()
    };
    let parsed = text
        .cast(&DataType::Float64)
        .map_err(|e| polars_error(source, e))?;
    if let Some(i) = first_lost(column, &parsed) {
        let value = value_at(column, i);
        return Err(source.error_at(i, &name, format!("{value} is not a number")));
    }
    let finite = parsed.f64().map_err(|e| polars_error(source, e))?;
    if let Some(i) = finite.iter().position(|v| v.is_some_and(|v| !v.is_finite())) {
        let value = value_at(column, i);
        return Err(source.error_at(i, &name, format!("{value} is not a finite number")));
    }
    Ok(parsed)
}

/// Converts a column to text, the form series keys and categories are kept in.
pub fn to_text(column: &Column, source: &Source) -> Result<Column, DataError> {
    let text = column
        .cast(&DataType::String)
        .map_err(|e| polars_error(source, e))?;
    Ok(text)
}

/// A column that must have a value on every row.
pub fn require_values(column: &Column, what: &str, source: &Source) -> Result<(), DataError> {
    if let Some(i) = first_null(column) {
        return Err(source.error_at(i, column.name(), format!("the {what} is empty")));
    }
    Ok(())
}

/// The largest sales value of one series on one day that is accepted: no
/// store sells 10^15 of anything in a day, and larger values overflow the
/// metrics (squared errors) to infinity.
pub const MAX_SALES: f64 = 1e15;

/// Target values: present, not negative, and at most [`MAX_SALES`].
pub fn check_target(column: &Column, source: &Source) -> Result<(), DataError> {
    require_values(column, "target", source)?;
    let values = column.f64().map_err(|e| polars_error(source, e))?;
    if let Some(i) = values.iter().position(|v| v.is_some_and(|v| v < 0.0)) {
        let value = value_at(column, i);
        return Err(source.error_at(i, column.name(), format!("negative sales {value}")));
    }
    if let Some((i, value)) = values
        .iter()
        .enumerate()
        .find_map(|(i, v)| v.filter(|v| *v > MAX_SALES).map(|v| (i, v)))
    {
        return Err(source.error_at(
            i,
            column.name(),
            format!("sales {value:e} are above the bound of 1e15 a day (no real store sells that much)"),
        ));
    }
    Ok(())
}

/// No two rows may share the same values of `columns`; `what` says what those
/// columns identify, for the message ("day and series", "join key").
pub fn check_unique(
    df: &DataFrame,
    columns: &[String],
    what: &str,
    source: &Source,
) -> Result<(), DataError> {
    const ROW: &str = "__salescast_row";
    let keys: Vec<Expr> = columns.iter().map(|c| col(c.as_str())).collect();
    let duplicates = df
        .clone()
        .lazy()
        .select(keys.clone())
        .with_row_index(ROW, None)
        .group_by(keys)
        .agg([
            col(ROW).min().alias("first"),
            col(ROW).max().alias("last"),
            len().alias("n"),
        ])
        .filter(col("n").gt(lit(1)))
        .sort(["first"], Default::default())
        .limit(1)
        .collect()
        .map_err(|e| polars_error(source, e))?;
    if duplicates.height() == 0 {
        return Ok(());
    }
    let index = |name: &str| -> usize {
        duplicates
            .column(name)
            .ok()
            .and_then(|c| c.get(0).ok())
            .and_then(|v| v.extract::<u64>())
            .unwrap_or_default() as usize
    };
    let (first, last) = (index("first"), index("last"));
    let values: Vec<String> = columns
        .iter()
        .map(|c| {
            let value = df.column(c).map(|col| value_at(col, first)).unwrap_or_default();
            format!("{c}={value}")
        })
        .collect();
    Err(DataError {
        file: source.name.clone(),
        row: Some(source.row(last)),
        column: None,
        problem: format!(
            "duplicate row: same {what} as {} ({})",
            source.row(first),
            values.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv() -> Source {
        Source::new("in.csv", true)
    }

    #[test]
    fn bad_number_names_line_and_value() {
        let column = Column::new("Sales".into(), ["1", " 2 ", "x3", "4"]);
        let err = parse_numbers(&column, &csv()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.csv, line 4, column \"Sales\": \"x3\" is not a number"
        );
    }

    #[test]
    fn impossible_date_is_refused() {
        let column = Column::new("Date".into(), ["2015-02-27", "2015-02-30"]);
        let err = parse_dates(&column, "%Y-%m-%d", &csv()).unwrap_err();
        assert!(
            err.to_string().contains("line 3") && err.to_string().contains("2015-02-30"),
            "{err}"
        );
    }

    #[test]
    fn duplicates_name_both_rows() {
        let df = df!("d" => ["a", "b", "a"], "k" => [1, 2, 1]).unwrap();
        let err = check_unique(&df, &["d".into(), "k".into()], "day and series", &csv()).unwrap_err();
        assert!(
            err.to_string().contains("line 4") && err.to_string().contains("line 2"),
            "{err}"
        );
        assert!(err.to_string().contains("same day and series as line 2"), "{err}");
        let err = check_unique(&df, &["d".into(), "k".into()], "join key", &csv()).unwrap_err();
        assert!(err.to_string().contains("same join key as line 2"), "{err}");
        let ok = df!("d" => ["a", "b", "a"], "k" => [1, 2, 2]).unwrap();
        assert!(check_unique(&ok, &["d".into(), "k".into()], "day and series", &csv()).is_ok());
    }

    #[test]
    fn row_lines_keep_the_jumps_only() {
        let mut lines = RowLines::new(2);
        for line in [2, 3, 5, 6, 7, 10] {
            lines.push(line);
        }
        assert_eq!(lines.jumps, [(2, 5), (5, 10)]);
        let source = Source::csv_with_lines("in.csv", lines);
        assert_eq!(
            (0..7).map(|i| source.row(i).to_string()).collect::<Vec<_>>(),
            [
                "line 2", "line 3", "line 5", "line 6", "line 7", "line 10", "line 11"
            ]
        );
        let json = Source::with_lines("e.jsonl", vec![1, 3, 3]);
        assert_eq!(json.row(2), RowRef::Line(3));
    }

    #[test]
    fn the_line_bound_is_checked_with_the_config() {
        assert!(ValidationSettings::default().check().is_ok());
        assert_eq!(ValidationSettings::default().max_line_bytes, 1 << 20);
        for bad in [0, MAX_LINE_BYTES_LIMIT + 1] {
            let settings = ValidationSettings {
                max_line_bytes: bad,
                ..ValidationSettings::default()
            };
            assert_eq!(settings.check().unwrap_err().key, "validation.max_line_bytes");
        }
    }

    #[test]
    fn several_refusals_are_one_error_naming_each() {
        assert!(DataError::all(vec![], "input files").is_ok());
        let one = DataError::file("a.csv", "no data rows");
        let err = DataError::all(vec![one], "input files").unwrap_err();
        assert_eq!(err.to_string(), "a.csv: no data rows");
        let errors = vec![
            csv().error_at(2, "Sales", "\"x\" is not a number"),
            DataError::file("b.csv", "no data rows"),
        ];
        let err = DataError::all(errors, "input files").unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 input files: refused, the first problem of each:\n  \
             - in.csv, line 4, column \"Sales\": \"x\" is not a number\n  - b.csv: no data rows"
        );
    }

    #[test]
    fn the_history_setting_is_report_or_refuse() {
        let parse = |text: &str| toml::from_str::<ValidationSettings>(text);
        assert_eq!(parse("").unwrap().history, HistoryPolicy::Report);
        assert_eq!(
            parse("history = \"refuse\"").unwrap().history,
            HistoryPolicy::Refuse
        );
        let err = parse("history = \"warn\"").unwrap_err().to_string();
        assert!(err.contains("unknown variant `warn`"), "{err}");
    }
}
