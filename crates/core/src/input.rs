//! Where ingest's files come from, and reading them whatever their format:
//! a local file, one S3 object (`s3://bucket/key`), or every object under an
//! S3 prefix (`s3://bucket/prefix/`, sorted by key; zero-byte "folder"
//! markers skipped), the raw zone where exports and Kinesis Data Firehose
//! land. S3 goes through the storage layer, so `--s3-endpoint` and
//! `AWS_ENDPOINT_URL` apply as they do to the lake.
//!
//! The format comes from the name: `.csv`, `.parquet`, or `.json`, `.jsonl`,
//! `.ndjson` (newline-delimited JSON objects), each optionally gzip-compressed
//! (`.gz`). Every cell is read as text and typed later by the mapping, so a
//! JSON file and a CSV file with the same values give the same rows. CSV and
//! JSON bytes pass the line bound (`validation.max_line_bytes`, see `scan`)
//! as they are read or decompressed, before they are parsed.

use std::io::Read as _;
use std::path::Path;

use polars::prelude::*;

use crate::ingest;
use crate::lake::{self, LakeError};
use crate::scan::{Layout, ScanError, Scanner};
use crate::storage::{self, Handle, S3Settings, StoreError};
use crate::validate::{self, DataError, RowRef, Source};

/// The file formats ingest reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    /// Newline-delimited JSON objects (also several objects on one line, as
    /// Firehose writes records without a delimiter).
    Json,
}

/// The format a file's name says, and whether it is gzip-compressed.
pub fn format_of(name: &str) -> Option<(Format, bool)> {
    let lower = name.to_ascii_lowercase();
    let (stem, gzip) = match lower.strip_suffix(".gz") {
        Some(stem) => (stem, true),
        None => (lower.as_str(), false),
    };
    let extension = stem.rsplit_once('.').map(|(_, e)| e)?;
    let format = match extension {
        "csv" => Format::Csv,
        "parquet" | "pq" => Format::Parquet,
        "json" | "jsonl" | "ndjson" => Format::Json,
        _ => return None,
    };
    Some((format, gzip))
}

const UNSUPPORTED: &str = "unsupported file type: expected a .csv, .parquet, .json, .jsonl or .ndjson \
     file, optionally gzip-compressed (.gz)";

/// Checks that ingest can read what `location` names, before anything is
/// read: a local path, `file://PATH`, or `s3://BUCKET[/KEY]`; another scheme
/// (`gs://`, `https://`) or an `s3://` URI without a bucket is refused with
/// what was given.
pub fn check_location(location: &str) -> Result<(), String> {
    let expected = "expected a file, file://PATH, s3://BUCKET/KEY or s3://BUCKET/PREFIX/";
    if let Some(rest) = location.strip_prefix("s3://") {
        let bucket = rest.split('/').next().unwrap_or_default();
        if bucket.is_empty() {
            return Err(format!("{location:?} names no bucket: {expected}"));
        }
        return Ok(());
    }
    if location.trim().is_empty() {
        return Err(format!("an empty location: {expected}"));
    }
    if location.contains("://") && !location.starts_with("file://") {
        return Err(format!("unsupported URI {location:?}: {expected}"));
    }
    Ok(())
}

/// Reads every file one `--input` (or `--plan`) names, in key order for a
/// prefix, each to its rows or its [`DataError`] (a missing file or object,
/// an unreadable file, a line longer than `max_line_bytes`; naming the path
/// or URI), so that every bad file of a prefix is named at once. An empty
/// prefix is a `DataError` for the whole location; a storage failure stops
/// the read.
pub fn read_all(
    location: &str,
    s3: &S3Settings,
    max_line_bytes: usize,
    handle: &Handle,
) -> Result<Vec<FileRead>, LakeError> {
    let Some(rest) = location.strip_prefix("s3://") else {
        let path = location.strip_prefix("file://").unwrap_or(location);
        return Ok(vec![read_local(Path::new(path), max_line_bytes)]);
    };
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(StoreError::UnsupportedUri {
            uri: location.to_string(),
            reason: "expected s3://BUCKET/KEY or s3://BUCKET/PREFIX/".into(),
        }
        .into());
    }
    let store = storage::open(&format!("s3://{bucket}"), s3, handle)?;
    let keys: Vec<String> = if key.is_empty() || key.ends_with('/') {
        let objects: Vec<String> = store
            .list(key)?
            .into_iter()
            .filter(|o| o.size > 0)
            .map(|o| o.key)
            .collect();
        if objects.is_empty() {
            return Err(DataError::file(location, "no objects under this prefix").into());
        }
        objects
    } else {
        vec![key.to_string()]
    };
    let single = keys.len() == 1 && !key.ends_with('/');
    lake::parallel_map(&keys, lake::IO_CONCURRENCY, |key| {
        let uri = store.uri_of(key);
        let Some((format, gzip)) = format_of(key) else {
            return Ok(Err(DataError::file(uri, UNSUPPORTED)));
        };
        let object = match store.get(key) {
            Ok(object) => object,
            Err(StoreError::NotFound { uri }) if single => {
                return Ok(Err(DataError::file(
                    uri,
                    "no such object (to read every object under a prefix, end the URI with '/')",
                )));
            }
            Err(StoreError::NotFound { uri }) => {
                return Ok(Err(DataError::file(
                    uri,
                    "the object disappeared while it was read",
                )));
            }
            Err(other) => return Err(other.into()),
        };
        Ok(read_bytes(object.bytes, &uri, format, gzip, max_line_bytes))
    })
    .into_iter()
    .collect()
}

/// One input file read: its rows and where they came from, or why it was refused.
pub type FileRead = Result<(DataFrame, Source), DataError>;

/// Reads a local file. Plain CSV and Parquet are read from disk as they
/// always were (memory-mapped); other formats through memory (plain JSON
/// read through the line bound, so a long line stops the read).
pub fn read_local(path: &Path, max_line_bytes: usize) -> Result<(DataFrame, Source), DataError> {
    let name = path.display().to_string();
    let Some((format, gzip)) = format_of(&name) else {
        return Err(DataError::file(name, UNSUPPORTED));
    };
    if !gzip && format != Format::Json {
        return ingest::read_input(path, max_line_bytes);
    }
    let not_read = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::file(name.clone(), "no such file"),
        _ => DataError::file(name.clone(), format!("cannot read: {e}")),
    };
    let bytes = if gzip {
        std::fs::read(path).map_err(not_read)?
    } else {
        let file = std::fs::File::open(path).map_err(not_read)?;
        let mut bytes = Vec::new();
        Scanner::new(Layout::Lines, max_line_bytes)
            .read_all(file, Some(&mut bytes))
            .map_err(|e| e.into_error(&name, "cannot read"))?;
        bytes
    };
    read_bytes(bytes, &name, format, gzip, max_line_bytes)
}

/// Reads a file's bytes in `format`, decompressing them first if `gzip`.
/// CSV and JSON are scanned before they are parsed (as they are
/// decompressed): a line longer than `max_line_bytes` is refused.
pub fn read_bytes(
    bytes: Vec<u8>,
    name: &str,
    format: Format,
    gzip: bool,
    max_line_bytes: usize,
) -> Result<(DataFrame, Source), DataError> {
    let mut scanner = match format {
        Format::Csv => Some(Scanner::new(Layout::Csv, max_line_bytes)),
        Format::Json => Some(Scanner::new(Layout::Lines, max_line_bytes)),
        Format::Parquet => None,
    };
    let bytes = if gzip {
        let mut out = Vec::new();
        let mut decoder = flate2::read::MultiGzDecoder::new(bytes.as_slice());
        let read = match scanner.as_mut() {
            Some(scanner) => scanner.read_all(decoder, Some(&mut out)),
            None => decoder.read_to_end(&mut out).map(drop).map_err(ScanError::Read),
        };
        read.map_err(|e| e.into_error(name, "not a readable gzip file"))?;
        out
    } else {
        if let Some(scanner) = scanner.as_mut() {
            scanner.feed(&bytes).map_err(|e| e.error(name))?;
        }
        bytes
    };
    let (df, source) = match format {
        Format::Csv => {
            let source = match scanner {
                Some(scanner) => Source::csv_with_lines(name, scanner.finish()),
                None => Source::new(name, true),
            };
            (ingest::read_csv_bytes(&bytes, &source)?, source)
        }
        Format::Parquet => {
            let source = Source::new(name, false);
            (ingest::read_parquet_bytes(&bytes, &source)?, source)
        }
        Format::Json => read_json_lines(&bytes, name)?,
    };
    validate::require_rows(&df, &source)?;
    Ok((df, source))
}

/// Reads newline-delimited JSON objects into text columns (numbers and
/// booleans as written, `null` and absent keys empty), one row per object,
/// the columns in the order their keys first appear. Blank lines and objects
/// that follow each other on one line are accepted. Rows are named by the
/// line their object starts on.
pub fn read_json_lines(bytes: &[u8], name: &str) -> Result<(DataFrame, Source), DataError> {
    let line_of = |offset: usize| 1 + bytes.iter().take(offset).filter(|b| **b == b'\n').count();
    let at_line = |line: usize, problem: String| DataError {
        row: Some(RowRef::Line(line)),
        ..DataError::file(name, problem)
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| at_line(line_of(e.valid_up_to()), format!("not UTF-8 text: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let skipped = bytes.len() - text.len();
    let mut names: Vec<String> = Vec::new();
    let mut columns: Vec<Vec<Option<String>>> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    // Lines are counted incrementally: (byte offset, its line).
    let mut counted = (0usize, 1usize);
    loop {
        let after = stream.byte_offset();
        let start = after
            + text
                .get(after..)
                .map_or(0, |rest| rest.len() - rest.trim_start().len());
        let line = counted.1 + text.get(counted.0..start).map_or(0, |s| s.matches('\n').count());
        counted = (start, line);
        let value = match stream.next() {
            None => break,
            Some(Ok(value)) => value,
            Some(Err(e)) => {
                let message = e.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m);
                let line = if e.line() > 0 {
                    e.line()
                } else {
                    line_of(skipped + start)
                };
                return Err(at_line(line, format!("not valid JSON: {message}")));
            }
        };
        let serde_json::Value::Object(record) = value else {
            return Err(at_line(line, "expected one JSON object per record".into()));
        };
        let row = lines.len();
        for (key, value) in record {
            let cell = match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                    return Err(DataError {
                        column: Some(key),
                        ..at_line(
                            line,
                            "nested JSON values (arrays, objects) are not supported".into(),
                        )
                    });
                }
            };
            let index = match names.iter().position(|n| *n == key) {
                Some(index) => index,
                None => {
                    names.push(key);
                    columns.push(vec![None; row]);
                    columns.len() - 1
                }
            };
            if let Some(column) = columns.get_mut(index) {
                column.push(cell);
            }
        }
        lines.push(line);
        for column in &mut columns {
            column.resize(row + 1, None);
        }
    }
    let source = Source::with_lines(name, lines);
    let frame = DataFrame::new_infer_height(
        names
            .into_iter()
            .zip(columns)
            .map(|(n, values)| Column::new(n.into(), values))
            .collect(),
    )
    .map_err(|e| source.error(e.to_string()))?;
    Ok((frame, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_readable_locations_pass_the_check() {
        for good in [
            "sales.csv",
            "/data/x.parquet",
            "file:///x.csv",
            "s3://b/k.csv",
            "s3://b/p/",
        ] {
            assert_eq!(check_location(good), Ok(()), "{good}");
        }
        for (bad, named) in [
            ("gs://b/sales.csv", "gs://b/sales.csv"),
            ("https://host/x.csv", "https://host/x.csv"),
            ("s3:///x.csv", "no bucket"),
            ("s3://", "no bucket"),
            ("", "empty"),
        ] {
            let problem = check_location(bad).unwrap_err();
            assert!(problem.contains(named), "{bad}: {problem}");
        }
    }

    #[test]
    fn formats_come_from_the_name() {
        assert_eq!(format_of("a/b.csv"), Some((Format::Csv, false)));
        assert_eq!(format_of("b.CSV.GZ"), Some((Format::Csv, true)));
        assert_eq!(format_of("x.parquet"), Some((Format::Parquet, false)));
        assert_eq!(
            format_of("pos/dt=2015-07-31/s-1.jsonl.gz"),
            Some((Format::Json, true))
        );
        assert_eq!(format_of("e.ndjson"), Some((Format::Json, false)));
        assert_eq!(format_of("e.json"), Some((Format::Json, false)));
        assert_eq!(format_of("firehose-1-2015-07-31"), None);
        assert_eq!(format_of("x.gz"), None);
        assert_eq!(format_of("x.txt"), None);
    }

    #[test]
    fn json_lines_become_text_columns_named_by_line() {
        let text = b"{\"d\":\"2015-07-31\",\"n\":12,\"x\":1.5}\n\n{\"n\":3,\"d\":\"2015-07-31\",\"b\":true}{\"d\":null,\"n\":-1}\n";
        let (df, source) = read_json_lines(text, "e.jsonl").unwrap();
        assert_eq!(
            df.get_column_names()
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            ["d", "n", "x", "b"]
        );
        assert_eq!(df.height(), 3);
        let n: Vec<_> = df.column("n").unwrap().str().unwrap().iter().collect();
        assert_eq!(n, [Some("12"), Some("3"), Some("-1")]);
        let x: Vec<_> = df.column("x").unwrap().str().unwrap().iter().collect();
        assert_eq!(x, [Some("1.5"), None, None]);
        assert_eq!(df.column("b").unwrap().str().unwrap().get(1), Some("true"));
        assert_eq!(df.column("d").unwrap().str().unwrap().get(2), None);
        assert_eq!(
            (0..3).map(|i| source.row(i).to_string()).collect::<Vec<_>>(),
            ["line 1", "line 3", "line 3"]
        );
    }

    #[test]
    fn bad_json_is_named_by_file_and_line() {
        let err = read_json_lines(b"{\"a\":1}\n{\"a\":\n2,}\n", "e.ndjson").unwrap_err();
        assert!(
            err.to_string().starts_with("e.ndjson, line 3: not valid JSON"),
            "{err}"
        );
        let err = read_json_lines(b"{\"a\":1}\n[1,2]\n", "e.ndjson").unwrap_err();
        assert_eq!(
            err.to_string(),
            "e.ndjson, line 2: expected one JSON object per record"
        );
        let err = read_json_lines(b"\n\n{\"a\":{\"b\":1}}\n", "e.ndjson").unwrap_err();
        assert_eq!(
            err.to_string(),
            "e.ndjson, line 3, column \"a\": nested JSON values (arrays, objects) are not supported"
        );
        let err = read_json_lines(b"{\"a\":\"\xff\"}\n", "e.ndjson").unwrap_err();
        assert!(
            err.to_string().starts_with("e.ndjson, line 1: not UTF-8"),
            "{err}"
        );
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    /// A blank line (skipped before the header), a quoted field over two
    /// lines, and a bad value on line 6.
    const BAD_AFTER_QUOTED_NEWLINE: &str = "\ndate,store,item,sales,promo,holiday,open\n\
        2024-03-01,S01,\"I01\nsecond line\",12,0,0,1\n\
        2024-03-01,S01,I02,7,1,0,1\n\
        2024-03-01,S01,I03,12a,1,0,1\n";

    #[test]
    fn defect_7_a_bad_value_after_a_quoted_newline_is_named_at_its_own_line() {
        let mapping = crate::mapping::DataMapping::default();
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("lf.csv", BAD_AFTER_QUOTED_NEWLINE.to_string()),
            ("crlf.csv", BAD_AFTER_QUOTED_NEWLINE.replace('\n', "\r\n")),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &text).unwrap();
            let on_disk = read_local(&path, 1 << 20).unwrap();
            let in_memory = read_bytes(text.clone().into_bytes(), name, Format::Csv, false, 1 << 20).unwrap();
            let gz = read_bytes(gzip(text.as_bytes()), name, Format::Csv, true, 1 << 20).unwrap();
            for (df, source) in [on_disk, in_memory, gz] {
                assert_eq!(df.height(), 3, "{name}");
                let err =
                    crate::ingest::clean_sales(df, &mapping, chrono::NaiveDate::MAX, &source).unwrap_err();
                assert!(
                    err.to_string()
                        .ends_with("line 6, column \"sales\": \"12a\" is not a number"),
                    "{name}: {err}"
                );
            }
        }
    }

    #[test]
    fn defect_8_a_line_longer_than_the_bound_is_refused_before_parsing() {
        let long = "x".repeat(2 << 20);
        let csv = format!("a,b\n1,2\n3,{long}\n4,5\n");
        let json = format!("{{\"a\":1}}\n\n{{\"a\":\"{long}\"}}\n");
        let dir = tempfile::tempdir().unwrap();
        for (name, text, format) in [("l.csv", &csv, Format::Csv), ("l.jsonl", &json, Format::Json)] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let errors = [
                read_local(&path, 1 << 20).unwrap_err(),
                read_bytes(text.clone().into_bytes(), name, format, false, 1 << 20).unwrap_err(),
                read_bytes(gzip(text.as_bytes()), name, format, true, 1 << 20).unwrap_err(),
            ];
            for err in errors {
                assert_eq!(err.row, Some(RowRef::Line(3)), "{name}: {err}");
                assert!(
                    err.to_string()
                        .contains("longer than 1048576 bytes (validation.max_line_bytes)"),
                    "{err}"
                );
            }
            assert!(read_local(&path, 3 << 20).is_ok(), "{name} within a larger bound");
        }
    }

    #[test]
    fn gzip_is_read_and_a_broken_one_is_named() {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(b"a,b\n1,2\n").unwrap();
        let gz = encoder.finish().unwrap();
        let (df, _) = read_bytes(gz, "x.csv.gz", Format::Csv, true, 1 << 20).unwrap();
        assert_eq!(df.shape(), (1, 2));
        let err = read_bytes(b"not gzip".to_vec(), "x.csv.gz", Format::Csv, true, 1 << 20).unwrap_err();
        assert!(
            err.to_string().starts_with("x.csv.gz: not a readable gzip file"),
            "{err}"
        );
    }
}

#[cfg(test)]
#[path = "input_props.rs"]
mod props;

#[cfg(test)]
#[path = "input_roundtrip_props.rs"]
mod roundtrip_props;
