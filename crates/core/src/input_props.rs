//! Property tests of the input readers (`input`, `scan`, `ingest`): CSV and
//! newline-delimited JSON, in memory, gzip-compressed and on disk. Any bytes,
//! and messy CSV or JSON built from the troubles real exports have (quotes,
//! CRLF, a BOM, line breaks in fields, ragged rows, huge numbers, non-UTF-8),
//! give rows or a [`DataError`] naming the file and, for a row, a line the
//! input has; never a panic. Well-formed rows read back as written, and a bad
//! value planted on one row is named at that row's line.

use std::io::Write as _;

use polars::prelude::*;
use proptest::prelude::*;

use super::*;
use crate::ingest::clean_sales;
use crate::mapping::DataMapping;

/// 256 cases a property (proptest's default; `PROPTEST_CASES` sets more for
/// a deeper search); failures are not written into the source tree (a case
/// found failing is kept as a named test instead).
pub(super) fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap_or_default();
    encoder.finish().unwrap_or_default()
}

/// How a file reaches the reader.
#[derive(Debug, Clone, Copy)]
pub(super) enum Via {
    Memory,
    Gzip,
    Disk,
}

pub(super) fn vias() -> impl Strategy<Value = Via> {
    prop_oneof![Just(Via::Memory), Just(Via::Gzip), Just(Via::Disk)]
}

/// Reads `bytes` as a file of `format` by `path`; returns the name the
/// errors must carry and the outcome, typed as sales with the demo mapping.
pub(super) fn read(
    bytes: &[u8],
    format: Format,
    via: Via,
    max_line_bytes: usize,
) -> (String, Result<DataFrame, DataError>) {
    let extension = match format {
        Format::Csv => "csv",
        Format::Json => "jsonl",
        Format::Parquet => "parquet",
    };
    let dir = tempfile::tempdir().ok();
    let (name, read) = match (via, &dir) {
        (Via::Disk, Some(dir)) => {
            let file = dir.path().join(format!("in.{extension}"));
            let _ = std::fs::write(&file, bytes);
            (file.display().to_string(), read_local(&file, max_line_bytes))
        }
        (Via::Gzip, _) => {
            let name = format!("in.{extension}.gz");
            let read = read_bytes(gzip(bytes), &name, format, true, max_line_bytes);
            (name, read)
        }
        _ => {
            let name = format!("in.{extension}");
            let read = read_bytes(bytes.to_vec(), &name, format, false, max_line_bytes);
            (name, read)
        }
    };
    let typed = read
        .and_then(|(df, source)| clean_sales(df, &DataMapping::default(), chrono::NaiveDate::MAX, &source));
    (name, typed)
}

/// The error names the file, and a row by a line the input has.
fn assert_clear(
    name: &str,
    bytes: &[u8],
    outcome: &Result<DataFrame, DataError>,
) -> Result<(), TestCaseError> {
    let Err(err) = outcome else { return Ok(()) };
    prop_assert_eq!(&err.file, name, "{}", err);
    prop_assert!(err.to_string().starts_with(name), "{err}");
    let lines = 1 + bytes.iter().filter(|b| **b == b'\n').count();
    match err.row {
        None => {}
        Some(RowRef::Line(line)) => {
            prop_assert!((1..=lines).contains(&line), "line {line} of {lines}: {err}")
        }
        Some(RowRef::Row(_)) => prop_assert!(false, "a row number, not a line, for a text file: {err}"),
    }
    Ok(())
}

/// A cell as messy exports write them.
fn messy_cell() -> impl Strategy<Value = Vec<u8>> {
    let fixed = prop::sample::select(vec![
        "2024-03-01",
        "2024-03-02",
        "2024-02-30",
        "01/03/2024",
        "S01",
        "S02",
        "I01",
        "0",
        "1",
        "12",
        " 7 ",
        "1e15",
        "1e308",
        "1e999",
        "-3",
        "NaN",
        "inf",
        "0x10",
        "",
        "\"\"",
        "\"a,b\"",
        "\"x\ny\"",
        "\"x\r\ny\"",
        "\"q\"\"q\"",
        "a\"b",
        "\"unterminated",
        "\"x\"y",
        "\u{feff}",
        "é",
        "\t",
    ])
    .prop_map(|s| s.as_bytes().to_vec());
    prop_oneof![
        4 => fixed,
        1 => prop::collection::vec(any::<u8>(), 0..6),
        1 => (1usize..400).prop_map(|n| vec![b'9'; n]),
    ]
}

/// A messy CSV file: maybe a BOM and blank lines, a header (the demo's or
/// one column short), ragged rows of messy cells, LF, CRLF or CR endings.
fn messy_csv() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::sample::select(vec![
        "date,store,item,sales,promo,holiday,open",
        "date,store,item,sales,promo,holiday",
        "\"date\",store,item,sales,promo,holiday,open",
    ]);
    let row = prop::collection::vec(messy_cell(), 5..9);
    (
        any::<bool>(),
        0usize..3,
        header,
        prop::collection::vec(row, 0..8),
        prop::sample::select(vec!["\n", "\r\n", "\r"]),
        any::<bool>(),
    )
        .prop_map(|(bom, blank, header, rows, end, last_end)| {
            let mut out = Vec::new();
            if bom {
                out.extend_from_slice("\u{feff}".as_bytes());
            }
            out.extend(std::iter::repeat_n(b'\n', blank));
            out.extend_from_slice(header.as_bytes());
            for row in rows {
                out.extend_from_slice(end.as_bytes());
                out.extend_from_slice(&row.join(&b","[..]));
            }
            if last_end {
                out.extend_from_slice(end.as_bytes());
            }
            out
        })
}

/// Messy newline-delimited JSON: objects of the demo's columns with values
/// of every JSON type (and numbers out of range), blank and broken lines.
fn messy_json() -> impl Strategy<Value = Vec<u8>> {
    let value = prop::sample::select(vec![
        "\"2024-03-01\"",
        "\"S01\"",
        "12",
        "1.5",
        "-3",
        "1e308",
        "1e999",
        "null",
        "true",
        "\"\"",
        "[1]",
        "{\"a\":1}",
        "\"x\\ny\"",
        "\"\\ud800\"",
        "12a",
    ]);
    let key = prop::sample::select(vec![
        "date", "store", "item", "sales", "promo", "holiday", "open", "x",
    ]);
    let object = prop::collection::vec((key, value), 0..8).prop_map(|fields| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(",")).into_bytes()
    });
    let line = prop_oneof![
        6 => object,
        1 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ];
    (
        any::<bool>(),
        prop::collection::vec(line, 0..8),
        prop::sample::select(vec!["\n", "\r\n", ""]),
    )
        .prop_map(|(bom, lines, end)| {
            let mut out = if bom {
                "\u{feff}".as_bytes().to_vec()
            } else {
                Vec::new()
            };
            for line in lines {
                out.extend_from_slice(&line);
                out.extend_from_slice(end.as_bytes());
            }
            out
        })
}

fn max_line_bytes() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(1usize << 20), 1 => 1usize..64]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_give_rows_or_an_error_naming_file_and_line(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        json in any::<bool>(),
        via in vias(),
        max in max_line_bytes(),
    ) {
        let format = if json { Format::Json } else { Format::Csv };
        let (name, outcome) = read(&bytes, format, via, max);
        assert_clear(&name, &bytes, &outcome)?;
    }

    #[test]
    fn messy_csv_gives_rows_or_an_error_naming_file_and_line(
        bytes in messy_csv(),
        via in vias(),
        max in max_line_bytes(),
    ) {
        let (name, outcome) = read(&bytes, Format::Csv, via, max);
        assert_clear(&name, &bytes, &outcome)?;
    }

    #[test]
    fn messy_json_gives_rows_or_an_error_naming_file_and_line(
        bytes in messy_json(),
        via in vias(),
        max in max_line_bytes(),
    ) {
        let (name, outcome) = read(&bytes, Format::Json, via, max);
        assert_clear(&name, &bytes, &outcome)?;
    }
}
