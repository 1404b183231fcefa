//! The data lake: its layout, writing daily partitions and attribute tables,
//! and reading a validated training window.
//!
//! Layout (Hive partitions, readable as-is by pyarrow, DuckDB and Athena):
//! - `sales/dt=YYYY-MM-DD/part-<hash>.parquet`: one day's rows; `<hash>` is the
//!   first 16 hex digits of the file's SHA-256, so writing the same day twice
//!   finds the same name and changes nothing.
//! - `dims/<table>.parquet`: a static attribute table.
//! - `plans/dt=YYYY-MM-DD/`, `predictions/<model>/dt=D/` and
//!   `scores/<model>/dt=D/`: see `plans.rs`, `predictions.rs`, `scores.rs`.

use std::collections::BTreeMap;
use std::io::Cursor;

use chrono::NaiveDate;
use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::ingest::{self, days_from_date};
use crate::mapping::{AttributeTable, DataMapping};
use crate::progress::Phase;
use crate::storage::{ObjectMeta, PutMode, Store, StoreError};
use crate::tables::TableDigest;
use crate::thin_days::{self, ThinDays};
use crate::validate::{self, DataError, Source, ValidationSettings};
use crate::window::Window;

#[path = "lake_shard.rs"]
mod shard_read;

pub const SALES_PREFIX: &str = "sales/dt=";
pub const DIMS_PREFIX: &str = "dims/";

/// How many partition files are read or written at once.
pub(crate) const IO_CONCURRENCY: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Polars error is the source (printed once by the chain printer).
    #[error("{key}")]
    Polars {
        key: String,
        #[source]
        source: PolarsError,
    },
}

/// What writing an attribute table did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOutcome {
    Written,
    Unchanged,
    Replaced,
}

/// How many days or tables a write added, left alone, or replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteCounts {
    pub written: usize,
    pub unchanged: usize,
    pub replaced: usize,
}

/// One day's rows encoded as the partition file that holds them.
#[derive(Debug, Clone)]
pub struct DayFile {
    pub day: NaiveDate,
    pub key: String,
    pub bytes: Vec<u8>,
}

impl DayFile {
    /// A sales partition file.
    pub fn encode(day: NaiveDate, df: &mut DataFrame) -> Result<Self, LakeError> {
        Self::encode_in(SALES_PREFIX, day, df)
    }

    /// A partition file under `root` (`sales/dt=`, `plans/dt=`).
    pub fn encode_in(root: &str, day: NaiveDate, df: &mut DataFrame) -> Result<Self, LakeError> {
        let prefix = prefix_in(root, day);
        let bytes = encode_parquet(df).map_err(|source| LakeError::Polars {
            key: prefix.clone(),
            source,
        })?;
        let digest = crate::digest::sha256_hex(&bytes);
        let key = format!("{prefix}part-{}.parquet", digest.get(..16).unwrap_or(&digest));
        Ok(Self { day, key, bytes })
    }
}

/// The folder (key prefix) of one day's partition.
pub fn partition_prefix(day: NaiveDate) -> String {
    prefix_in(SALES_PREFIX, day)
}

/// The folder of one day's partition under `root` (`sales/dt=`, `plans/dt=`).
pub fn prefix_in(root: &str, day: NaiveDate) -> String {
    format!("{root}{}/", day.format("%Y-%m-%d"))
}

pub fn attributes_key(table: &str) -> String {
    format!("{DIMS_PREFIX}{table}.parquet")
}

/// A day file whose bytes do not hash to its name.
pub const NOT_ITS_NAME: &str =
    "damaged: its bytes do not hash to its name (part-<the first 16 hex digits of their SHA-256>)";

/// Parses the day out of a sales partition file's key, if it is one.
fn day_of_key(key: &str) -> Option<NaiveDate> {
    day_of_key_in(SALES_PREFIX, key)
}

/// Parses the day out of the key of a partition file under `root`.
pub(crate) fn day_of_key_in(root: &str, key: &str) -> Option<NaiveDate> {
    let rest = key.strip_prefix(root)?;
    let (day, file) = rest.split_once('/')?;
    if !file.ends_with(".parquet") || file.contains('/') {
        return None;
    }
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// Serializes a frame as Parquet (zstd), deterministically for equal frames.
pub fn encode_parquet(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::default())
        .finish(df)?;
    Ok(bytes)
}

/// Decodes Parquet bytes; a damaged file is an error, never a panic
/// (`parquet_guard`).
pub fn decode_parquet(bytes: Vec<u8>) -> PolarsResult<DataFrame> {
    crate::parquet_guard::decode(|| ParquetReader::new(Cursor::new(bytes)).finish())
}

/// A validated window of sales, every mapped column typed, sorted by day and series.
#[derive(Debug, Clone)]
pub struct SalesWindow {
    pub frame: DataFrame,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// The partition files read, with their versions: the data's fingerprint.
    pub files: Vec<ObjectMeta>,
    /// Thin days before the newest, reported but not refused.
    pub thin_days: ThinDays,
}

impl SalesWindow {
    /// The data's fingerprint: SHA-256 over the keys, sizes and versions of
    /// the partition files read, then the keys and content hashes of the
    /// attribute and calendar tables read with them (`tables`; none gives
    /// the sales files' fingerprint alone, as before tables counted).
    pub fn fingerprint(&self, tables: &[TableDigest]) -> String {
        let mut hasher = Sha256::new();
        for file in &self.files {
            hasher.update(format!("{}\t{}\t{}\n", file.key, file.size, file.version));
        }
        for table in tables {
            hasher.update(format!("{}\tsha256:{}\n", table.key, table.sha256));
        }
        hex::encode(hasher.finalize())
    }
}

#[derive(Debug, Clone)]
pub struct Lake {
    store: Store,
}

impl Lake {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every sales partition file, grouped by day.
    pub fn partitions(&self) -> Result<BTreeMap<NaiveDate, Vec<ObjectMeta>>, LakeError> {
        self.partitions_in(SALES_PREFIX)
    }

    /// Every partition file under `root` (`sales/dt=`, `plans/dt=`), grouped by day.
    pub fn partitions_in(&self, root: &str) -> Result<BTreeMap<NaiveDate, Vec<ObjectMeta>>, LakeError> {
        let mut days: BTreeMap<NaiveDate, Vec<ObjectMeta>> = BTreeMap::new();
        for meta in self.store.list(root)? {
            if let Some(day) = day_of_key_in(root, &meta.key) {
                days.entry(day).or_default().push(meta);
            }
        }
        Ok(days)
    }

    /// Refuses a run whose day `day` has no sales partition in `partitions`
    /// (a [`Lake::partitions`] listing), saying why the run needs it and
    /// which day the lake holds last.
    pub fn require_day(
        &self,
        partitions: &BTreeMap<NaiveDate, Vec<ObjectMeta>>,
        day: NaiveDate,
        why: &str,
    ) -> Result<(), LakeError> {
        if partitions.contains_key(&day) {
            return Ok(());
        }
        let newest = partitions
            .keys()
            .next_back()
            .map_or("the lake has no sales partitions".to_string(), |d| {
                format!("the newest day in the lake is {d}")
            });
        Err(DataError::file(
            self.store.uri_of(&partition_prefix(day)),
            format!("missing partition for {day}, {why} ({newest})"),
        )
        .into())
    }

    /// Refuses a day with more than one file: an `ingest --replace` that
    /// stopped between writing the new file and removing the old (see
    /// [`Lake::write_days_in`]), whose rows readers would otherwise count twice.
    pub fn one_file_per_day<'a>(
        &self,
        root: &str,
        days: impl IntoIterator<Item = (&'a NaiveDate, &'a Vec<ObjectMeta>)>,
    ) -> Result<(), LakeError> {
        let Some((day, files)) = days.into_iter().find(|(_, files)| files.len() > 1) else {
            return Ok(());
        };
        let names: Vec<&str> = files.iter().filter_map(|f| f.key.rsplit('/').next()).collect();
        Err(DataError::file(
            self.store.uri_of(&prefix_in(root, *day)),
            format!(
                "day {day} has {} files ({}): an `ingest --replace` of that day did not finish; run it again",
                files.len(),
                names.join(", ")
            ),
        )
        .into())
    }

    /// Writes days of rows, each as one partition file, after checking them
    /// all: a day that already holds other rows is refused before anything is
    /// written, unless `replace`, which writes the new file and then removes
    /// the old. Idempotent: the same rows give the same file name and change
    /// nothing.
    pub fn write_days(&self, days: &[DayFile], replace: bool) -> Result<WriteCounts, LakeError> {
        self.write_days_in(SALES_PREFIX, days, replace)
    }

    /// [`Lake::write_days`] for the partitions under `root` (`plans/dt=`),
    /// whose files were encoded with [`DayFile::encode_in`] for that root.
    pub fn write_days_in(
        &self,
        root: &str,
        days: &[DayFile],
        replace: bool,
    ) -> Result<WriteCounts, LakeError> {
        let partitions = self.partitions_in(root)?;
        let mut counts = WriteCounts::default();
        let mut pending = Vec::new();
        for file in days {
            let existing = partitions.get(&file.day).map(Vec::as_slice).unwrap_or_default();
            let same = existing.len() == 1 && existing[0].key == file.key;
            if same {
                // With --replace, a file of this name whose bytes changed
                // since (damaged) is written again.
                if replace && self.store.get(&file.key)?.bytes != file.bytes {
                    self.store.put(&file.key, &file.bytes, PutMode::Overwrite)?;
                    counts.replaced += 1;
                } else {
                    counts.unchanged += 1;
                }
                continue;
            }
            if !existing.is_empty() && !replace {
                return Err(DataError::file(
                    self.store.uri_of(&existing[0].key),
                    format!(
                        "day {} is already in the lake with other rows; \
                         pass --replace to replace that day",
                        file.day
                    ),
                )
                .into());
            }
            pending.push((file, existing));
        }
        // Every new file first, then the old ones of replaced days: a run
        // that stops in between leaves whole days, some with two files
        // (which readers refuse by name and a rerun with --replace mends).
        let progress =
            (!pending.is_empty()).then(|| Phase::start("writing partitions", Some(pending.len() as u64)));
        let written = parallel_map(&pending, IO_CONCURRENCY, |(file, _)| {
            let put = match self.store.put(&file.key, &file.bytes, PutMode::Create) {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(LakeError::from(e)),
            };
            if let Some(progress) = &progress {
                progress.advance(1, "");
            }
            put
        });
        written.into_iter().collect::<Result<(), _>>()?;
        if let Some(progress) = progress {
            progress.finish();
        }
        crate::registry::pause::at(crate::registry::pause::Step::DaysWritten).map_err(|e| {
            LakeError::Store(StoreError::Io {
                uri: self.store.uri_of(root),
                source: e,
            })
        })?;
        let removed = parallel_map(&pending, IO_CONCURRENCY, |(file, existing)| {
            for old in existing.iter().filter(|m| m.key != file.key) {
                self.store.delete(&old.key)?;
            }
            Ok::<_, LakeError>(existing.is_empty())
        });
        for fresh in removed {
            if fresh? {
                counts.written += 1;
            } else {
                counts.replaced += 1;
            }
        }
        Ok(counts)
    }

    /// Writes a static attribute table, replacing the previous one.
    pub fn write_attributes(&self, table: &str, df: &mut DataFrame) -> Result<WriteOutcome, LakeError> {
        let key = attributes_key(table);
        let bytes = encode_parquet(df).map_err(|source| LakeError::Polars {
            key: key.clone(),
            source,
        })?;
        let outcome = match self.store.get(&key) {
            Ok(old) if old.bytes == bytes => return Ok(WriteOutcome::Unchanged),
            Ok(_) => WriteOutcome::Replaced,
            Err(StoreError::NotFound { .. }) => WriteOutcome::Written,
            Err(e) => return Err(e.into()),
        };
        self.store.put(&key, &bytes, PutMode::Overwrite)?;
        Ok(outcome)
    }

    /// Reads and types an attribute table named in the mapping; with the
    /// digest of the bytes read.
    pub fn read_attributes(
        &self,
        table: &AttributeTable,
        mapping: &DataMapping,
    ) -> Result<(DataFrame, TableDigest), LakeError> {
        let key = attributes_key(&table.table);
        let uri = self.store.uri_of(&key);
        let object = self.store.get(&key).map_err(|e| match e {
            StoreError::NotFound { .. } => LakeError::Data(DataError::file(
                uri.clone(),
                format!(
                    "attribute table {:?} is not in the lake; ingest it with --attributes {}=FILE",
                    table.table, table.table
                ),
            )),
            other => other.into(),
        })?;
        let source = Source::new(uri, false);
        let digest = TableDigest::of(key, &object.bytes);
        let df =
            decode_parquet(object.bytes).map_err(|e| source.error(format!("not readable Parquet: {e}")))?;
        Ok((ingest::clean_attributes(df, table, mapping, &source)?, digest))
    }

    /// An ingested day file's bytes (sales, plans), checked against its name.
    pub fn get_day_file(&self, key: &str) -> Result<Vec<u8>, LakeError> {
        let bytes = self.store.get(key)?.bytes;
        if !crate::digest::matches_name(key, &bytes) {
            let fix = "ingest the day again with --replace";
            return Err(DataError::file(self.store.uri_of(key), format!("{NOT_ITS_NAME}; {fix}")).into());
        }
        Ok(bytes)
    }

    /// Reads and validates the partitions of the window's days; the
    /// partition of its last day must exist. Thin days (far fewer series
    /// than the window's median) are refused on the last day, and before it
    /// as `validation.history` says: reported ones are in the window's
    /// `thin_days`, and warned about once.
    pub fn read_days(
        &self,
        mapping: &DataMapping,
        validation: &ValidationSettings,
        window: &Window,
    ) -> Result<SalesWindow, LakeError> {
        let (first_day, last_day) = (window.first_day, window.last_day);
        let partitions = self.partitions()?;
        self.require_day(&partitions, last_day, "the newest day this run needs")?;
        self.one_file_per_day(SALES_PREFIX, partitions.range(first_day..=last_day))?;
        let files: Vec<ObjectMeta> = partitions
            .range(first_day..=last_day)
            .flat_map(|(_, files)| files.iter().cloned())
            .collect();
        let progress = Phase::start("reading the window", Some(files.len() as u64));
        let frames = self.read_files(&files, mapping, Some(&progress))?;
        let frame = concat_frames(frames).map_err(|source| LakeError::Polars {
            key: partition_prefix(last_day),
            source,
        })?;
        let mut window = SalesWindow {
            frame,
            first_day,
            last_day,
            files,
            thin_days: ThinDays::find(&[], validation.min_series_ratio),
        };
        window.thin_days = self.validate_window(&window, mapping, validation)?;
        progress.finish();
        Ok(window)
    }

    /// One day's sales partition typed by the mapping (not compared with
    /// other days): `None` when `partitions` (a [`Lake::partitions`]
    /// listing) has no partition for `day`; a day with two files is refused.
    pub fn read_day(
        &self,
        mapping: &DataMapping,
        partitions: &BTreeMap<NaiveDate, Vec<ObjectMeta>>,
        day: NaiveDate,
    ) -> Result<Option<DataFrame>, LakeError> {
        let Some(files) = partitions.get(&day) else {
            return Ok(None);
        };
        self.one_file_per_day(SALES_PREFIX, [(&day, files)])?;
        let frames = self.read_files(files, mapping, None)?;
        concat_frames(frames)
            .map(Some)
            .map_err(|source| LakeError::Polars {
                key: partition_prefix(day),
                source,
            })
    }

    fn read_files(
        &self,
        files: &[ObjectMeta],
        mapping: &DataMapping,
        progress: Option<&Phase>,
    ) -> Result<Vec<DataFrame>, LakeError> {
        parallel_map(files, IO_CONCURRENCY, |file| {
            let frame = self.read_partition_file(file, mapping);
            if let Some(progress) = progress {
                progress.advance(1, "");
            }
            frame
        })
        .into_iter()
        .collect()
    }

    /// Reads one partition file and conforms it to the mapping's typed columns.
    fn read_partition_file(&self, file: &ObjectMeta, mapping: &DataMapping) -> Result<DataFrame, LakeError> {
        let uri = self.store.uri_of(&file.key);
        let source = Source::new(uri, false);
        let bytes = self.get_day_file(&file.key)?;
        let df = decode_parquet(bytes).map_err(|e| source.error(format!("not readable Parquet: {e}")))?;
        validate::require_rows(&df, &source).map_err(|mut e| {
            e.problem = "empty partition: the file has no rows".into();
            e
        })?;
        let df = conform(df, mapping, &source)?;
        check_partition_day(&df, &mapping.date_column, day_of_key(&file.key), &source)?;
        Ok(df)
    }

    /// Refuses a day and series twice, and judges the thin days
    /// (`validation.history`): returns the older ones that are reported.
    fn validate_window(
        &self,
        window: &SalesWindow,
        mapping: &DataMapping,
        validation: &ValidationSettings,
    ) -> Result<ThinDays, LakeError> {
        let day_and_series = mapping.day_and_series();
        let source = Source::new(
            format!(
                "{} ({} .. {})",
                self.store.uri_of("sales"),
                window.first_day,
                window.last_day
            ),
            false,
        );
        validate::check_unique(&window.frame, &day_and_series, "day and series", &source)?;
        crate::series_names::refuse_shared_names(&window.frame, &mapping.series_keys, &source)?;
        let counts = thin_days::series_per_day(&window.frame, &mapping.date_column, &source)?;
        let thin = ThinDays::find(&counts, validation.min_series_ratio);
        let history = thin_days::judge(&thin, window.last_day, validation.history, &source.name, |day| {
            self.store.uri_of(&partition_prefix(day))
        })?;
        thin_days::warn(&history);
        Ok(history)
    }
}

/// Every row of a partition file must carry the day of its `dt=` folder.
pub(crate) fn check_partition_day(
    df: &DataFrame,
    date_column: &str,
    day: Option<NaiveDate>,
    source: &Source,
) -> Result<(), DataError> {
    let expected = day.map(days_from_date);
    let dates = df
        .column(date_column)
        .and_then(|c| c.date().cloned())
        .map_err(|e| source.error(e.to_string()))?;
    if let Some(i) = dates.physical().iter().position(|d| d != expected) {
        return Err(source.error_at(i, date_column, "the date does not match the partition's dt= day"));
    }
    Ok(())
}

/// `f` over `items` on at most `concurrency` threads; results in input order.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    concurrency: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a lake worker panicked"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The mapped columns of a partition, in mapping order, with the lake's types.
fn conform(df: DataFrame, mapping: &DataMapping, source: &Source) -> Result<DataFrame, DataError> {
    let mut wanted: Vec<&String> = vec![&mapping.date_column];
    wanted.extend(&mapping.series_keys);
    wanted.push(&mapping.target);
    wanted.extend(&mapping.covariates);
    validate::require_columns(&df, wanted.iter().copied(), source)?;
    let selected = df
        .select(wanted.iter().map(|s| s.as_str()))
        .map_err(|e| source.error(e.to_string()))?;
    ingest::clean_sales(selected, mapping, NaiveDate::MAX, source) // days ingest accepted
}

pub(crate) fn concat_frames(frames: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    let mut iter = frames.into_iter();
    let Some(mut out) = iter.next() else {
        return Ok(DataFrame::empty());
    };
    for df in iter {
        out.vstack_mut_owned(df)?;
    }
    out.rechunk_mut_par();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_round_trip() {
        let day = NaiveDate::from_ymd_opt(2015, 7, 31).unwrap();
        let key = format!("{}part-0123.parquet", partition_prefix(day));
        assert_eq!(key, "sales/dt=2015-07-31/part-0123.parquet");
        assert_eq!(day_of_key(&key), Some(day));
        assert_eq!(day_of_key("sales/dt=2015-07-31/notes.txt"), None);
        assert_eq!(day_of_key("sales/dt=2015-13-01/part.parquet"), None);
    }
}
