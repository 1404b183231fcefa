//! A streaming scan of an input file's bytes before polars parses them: it
//! refuses a line longer than `validation.max_line_bytes` (stopping at the
//! first one, without parsing), and for CSV it notes the line each record
//! starts on, since a quoted field may hold line breaks.

use std::io::Read;

use crate::validate::{DataError, RowLines, RowRef};

/// How a file is split into what the bound applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// CSV: the bound applies to a record, which a quoted field may spread
    /// over several lines; a record is named by the line it starts on.
    Csv,
    /// Newline-delimited JSON: the bound applies to each physical line.
    Lines,
}

/// Where the CSV scan is within a record, as polars splits fields: a field
/// that starts with a quote runs until a separator or line end outside
/// quotes (every quote in it toggles), any other field to the next
/// separator or line end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Start,
    Plain,
    Quoted { open: bool },
}

/// Bytes fed in order, chunk by chunk; see [`Layout`].
#[derive(Debug)]
pub struct Scanner {
    layout: Layout,
    max: usize,
    /// The physical line of the next byte (from 1).
    line: usize,
    /// The bytes of the current line or record so far, its `\n` excluded.
    len: usize,
    /// The line the current record started on; `None` between records.
    record: Option<usize>,
    field: Field,
    /// Whether the header (the first record) has been seen.
    header: bool,
    /// CSV: how many bytes of a leading byte order mark have been passed;
    /// `None` once past the start of the file.
    bom: Option<usize>,
    rows: RowLines,
}

/// UTF-8's byte order mark, which polars skips at the start of a CSV file
/// (before any blank lines it skips too).
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// A line (or CSV record) longer than the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// The line it starts on (from 1).
    pub line: usize,
    pub layout: Layout,
    pub max: usize,
}

impl TooLong {
    /// The refusal, naming the file and line.
    pub fn error(&self, file: &str) -> DataError {
        let what = match self.layout {
            Layout::Csv => "the record starting on this line is",
            Layout::Lines => "the line is",
        };
        DataError {
            row: Some(RowRef::Line(self.line)),
            ..DataError::file(
                file,
                format!(
                    "{what} longer than {} bytes (validation.max_line_bytes)",
                    self.max
                ),
            )
        }
    }
}

impl Scanner {
    pub fn new(layout: Layout, max_line_bytes: usize) -> Self {
        Self {
            layout,
            max: max_line_bytes,
            line: 1,
            len: 0,
            record: None,
            field: Field::Start,
            header: false,
            bom: Some(0),
            rows: RowLines::new(2),
        }
    }

    /// Scans the next bytes of the file.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), TooLong> {
        match self.layout {
            Layout::Lines => self.feed_lines(chunk),
            Layout::Csv => self.feed_csv(chunk),
        }
    }

    fn too_long(&self, line: usize) -> TooLong {
        TooLong {
            line,
            layout: self.layout,
            max: self.max,
        }
    }

    fn feed_lines(&mut self, mut chunk: &[u8]) -> Result<(), TooLong> {
        loop {
            let end = chunk.iter().position(|b| *b == b'\n');
            let len = self.len + end.unwrap_or(chunk.len());
            if len > self.max {
                return Err(self.too_long(self.line));
            }
            match end {
                Some(end) => {
                    self.line += 1;
                    self.len = 0;
                    chunk = chunk.get(end + 1..).unwrap_or_default();
                }
                None => {
                    self.len = len;
                    return Ok(());
                }
            }
        }
    }

    fn feed_csv(&mut self, chunk: &[u8]) -> Result<(), TooLong> {
        for &byte in chunk {
            if let Some(seen) = self.bom {
                if BOM.get(seen) == Some(&byte) {
                    self.bom = (seen + 1 < BOM.len()).then_some(seen + 1);
                    continue;
                }
                self.bom = None;
                if seen > 0 {
                    // Part of a mark only: text of the header, which starts here.
                    self.record = Some(self.line);
                    self.field = Field::Plain;
                    self.len = seen;
                }
            }
            let start = match self.record {
                Some(start) => start,
                None if !self.header && (byte == b'\n' || byte == b'\r') => {
                    // Blank lines before the header are skipped (polars does);
                    // after it, each is a row of empty cells.
                    if byte == b'\n' {
                        self.line += 1;
                    }
                    continue;
                }
                None => {
                    self.record = Some(self.line);
                    if self.header {
                        self.rows.push(self.line);
                    }
                    self.line
                }
            };
            let end_of_field = match self.field {
                Field::Start if byte == b'"' => {
                    self.field = Field::Quoted { open: true };
                    false
                }
                Field::Quoted { open } if byte == b'"' => {
                    self.field = Field::Quoted { open: !open };
                    false
                }
                Field::Quoted { open: true } => false,
                Field::Start | Field::Plain | Field::Quoted { open: false } => byte == b',' || byte == b'\n',
            };
            if byte == b'\n' {
                self.line += 1;
            }
            if end_of_field && byte == b'\n' {
                self.record = None;
                self.header = true;
                self.field = Field::Start;
                self.len = 0;
                continue;
            }
            self.field = match (end_of_field, self.field) {
                (true, _) => Field::Start,
                (false, Field::Start) => Field::Plain,
                (false, field) => field,
            };
            self.len += 1;
            if self.len > self.max {
                return Err(self.too_long(start));
            }
        }
        Ok(())
    }

    /// The line each data row starts on (CSV; the header is line 1).
    pub fn finish(self) -> RowLines {
        self.rows
    }

    /// Feeds everything `input` holds, appending it to `out` if given;
    /// stops at the first line too long.
    pub fn read_all(&mut self, mut input: impl Read, mut out: Option<&mut Vec<u8>>) -> Result<(), ScanError> {
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = match input.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ScanError::Read(e)),
            };
            let chunk = buffer.get(..n).unwrap_or_default();
            self.feed(chunk).map_err(ScanError::TooLong)?;
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(chunk);
            }
        }
    }
}

/// Why [`Scanner::read_all`] stopped early.
#[derive(Debug)]
pub enum ScanError {
    Read(std::io::Error),
    TooLong(TooLong),
}

impl ScanError {
    /// The refusal of `file`; a read error is `{what}: {error}`.
    pub fn into_error(self, file: &str, what: &str) -> DataError {
        match self {
            ScanError::Read(e) => DataError::file(file, format!("{what}: {e}")),
            ScanError::TooLong(too_long) => too_long.error(file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows' lines of a CSV text fed in chunks of `step` bytes.
    fn csv_rows(text: &str, step: usize) -> Vec<usize> {
        let mut scanner = Scanner::new(Layout::Csv, 1 << 20);
        for chunk in text.as_bytes().chunks(step) {
            scanner.feed(chunk).unwrap();
        }
        let rows = scanner.finish();
        (0..rows.rows()).map(|i| rows.line(i)).collect()
    }

    #[test]
    fn defect_7_csv_rows_are_named_by_the_line_they_start_on() {
        let text = "a,b,c\n1,\"x\ny\",3\n4,5,6\n7,\"\"\"q\"\"\n\n\",9\n10,1\"1,12\n";
        for step in [1, 3, 1 << 16] {
            assert_eq!(csv_rows(text, step), [2, 4, 5, 8], "step {step}");
            let crlf = text.replace('\n', "\r\n");
            assert_eq!(csv_rows(&crlf, step), [2, 4, 5, 8], "CRLF, step {step}");
        }
        assert_eq!(
            csv_rows("\"a\nb\",c\n1,2\n3,4", 5),
            [3, 4],
            "a header over two lines, no last line end"
        );
        assert_eq!(
            csv_rows("a,b\n1,2\n\n\n3,4\n\n", 4),
            [2, 3, 4, 5, 6],
            "blank lines are rows of empty cells"
        );
        assert_eq!(
            csv_rows("\r\n\na,b\n1,2\n", 1),
            [4],
            "blank lines before the header are skipped"
        );
        assert_eq!(
            csv_rows("a,b\n\"x\"y\"\n\",1\n2,3\n", 2),
            [2, 4],
            "every quote of a quoted field toggles"
        );
        assert_eq!(
            csv_rows("a,b\nx\"y,1\n2,3\n", 2),
            [2, 3],
            "a quote inside a plain field is text"
        );
        assert_eq!(csv_rows("", 1), Vec::<usize>::new());
    }

    /// Found by `input_roundtrip_props`: the scan took a leading byte order
    /// mark for the header's first bytes, so the blank lines polars skips
    /// after it were not skipped, and every row was named a line early.
    #[test]
    fn a_byte_order_mark_then_blank_lines_before_the_header_names_rows_at_their_lines() {
        for step in [1, 2, 1 << 16] {
            assert_eq!(csv_rows("\u{feff}\na,b\n1,2\n", step), [3], "step {step}");
            assert_eq!(
                csv_rows("\u{feff}\r\n\r\na,b\r\n1,2\r\n3,4", step),
                [4, 5],
                "step {step}"
            );
            assert_eq!(
                csv_rows("\u{feff}a,b\n1,2\n", step),
                [2],
                "a mark on the header's line"
            );
        }
        let partial = [0xEF, 0xBB, b'\n', b'a', b'\n', b'1', b'\n'];
        let mut scanner = Scanner::new(Layout::Csv, 1 << 20);
        scanner.feed(&partial).unwrap();
        let rows = scanner.finish();
        assert_eq!(
            (0..rows.rows()).map(|i| rows.line(i)).collect::<Vec<_>>(),
            [2, 3],
            "part of a mark is text of the header's line"
        );
    }

    fn too_long(layout: Layout, text: &[u8], max: usize, step: usize) -> Option<usize> {
        let mut scanner = Scanner::new(layout, max);
        text.chunks(step)
            .try_for_each(|chunk| scanner.feed(chunk))
            .err()
            .map(|e| e.line)
    }

    #[test]
    fn defect_8_a_line_longer_than_the_bound_is_refused_at_its_line() {
        let long = "x".repeat(2 << 20);
        let text = format!("a,b\n1,2\n3,{long}\n4,5\n");
        for layout in [Layout::Csv, Layout::Lines] {
            for step in [1 << 16, 1000] {
                assert_eq!(
                    too_long(layout, text.as_bytes(), 1 << 20, step),
                    Some(3),
                    "{layout:?}"
                );
            }
            assert_eq!(too_long(layout, text.as_bytes(), 3 << 20, 1 << 16), None);
            assert_eq!(
                too_long(layout, b"abc\nabcd\nab", 4, 1),
                None,
                "the bound itself is allowed"
            );
            assert_eq!(too_long(layout, b"abc\nabcd\nabcde", 4, 2), Some(3), "{layout:?}");
            assert_eq!(too_long(layout, b"abc\r\nabcd\r\n", 4, 2), Some(2), "a CR counts");
        }
        let record = b"a,b\n\"12\n34\n56\",7\n";
        assert_eq!(
            too_long(Layout::Lines, record, 5, 3),
            None,
            "JSON bounds each physical line"
        );
        assert_eq!(
            too_long(Layout::Csv, record, 8, 3),
            Some(2),
            "CSV bounds the record, named by its first line"
        );
        assert_eq!(too_long(Layout::Csv, record, 12, 3), None);
        let err = TooLong {
            line: 3,
            layout: Layout::Csv,
            max: 10,
        }
        .error("s.csv");
        assert_eq!(
            err.to_string(),
            "s.csv, line 3: the record starting on this line is longer than 10 bytes (validation.max_line_bytes)"
        );
    }
}
