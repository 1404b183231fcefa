//! Reading one shard's rows of a sales window (`retrain --shard`, `predict
//! --shard`): every day's file validated whole, then only the shard's series
//! kept, so a shard holds its own rows and not the window.

use super::*;

impl Lake {
    /// [`Lake::read_days`] keeping only the series of `shard`: each day's
    /// file is validated whole (unique day and series, its number of series
    /// for the thin-day check) before its other series are dropped, so a
    /// shard refuses what an unsharded read refuses and finds the same thin
    /// days, while it holds only its own rows (and a few files in flight).
    pub fn read_days_of_shard(
        &self,
        mapping: &DataMapping,
        validation: &ValidationSettings,
        window: &Window,
        shard: crate::shard::Shard,
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
        let day_and_series = mapping.day_and_series();
        let read = parallel_map(&files, IO_CONCURRENCY, |file| {
            let frame = self.read_partition_file(file, mapping)?;
            let source = Source::new(self.store.uri_of(&file.key), false);
            validate::check_unique(&frame, &day_and_series, "day and series", &source)?;
            let counts = thin_days::series_per_day(&frame, &mapping.date_column, &source)?;
            let kept = crate::shard::filter_frame(&frame, &mapping.series_keys, shard).map_err(|source| {
                LakeError::Polars {
                    key: file.key.clone(),
                    source,
                }
            })?;
            progress.advance(1, "");
            Ok::<_, LakeError>((kept, counts))
        });
        let mut frames = Vec::with_capacity(read.len());
        let mut counts = Vec::new();
        for result in read {
            let (frame, day_counts) = result?;
            frames.push(frame);
            counts.extend(day_counts);
        }
        counts.sort_unstable();
        let frame = concat_frames(frames).map_err(|source| LakeError::Polars {
            key: partition_prefix(last_day),
            source,
        })?;
        let source_name = format!("{} ({first_day} .. {last_day})", self.store.uri_of("sales"));
        let thin = ThinDays::find(&counts, validation.min_series_ratio);
        let thin_days = thin_days::judge(&thin, last_day, validation.history, &source_name, |day| {
            self.store.uri_of(&partition_prefix(day))
        })?;
        thin_days::warn(&thin_days);
        progress.finish();
        Ok(SalesWindow {
            frame,
            first_day,
            last_day,
            files,
            thin_days,
        })
    }
}
