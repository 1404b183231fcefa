//! Rendering the reports of a sharded run's steps for a terminal: a
//! shard's (predict, monitor, retrain's prepare and score), the fit's, and
//! a retried retrain fan-in's.

use salescast_core::digest::short;
use salescast_core::lake::WriteOutcome;
use salescast_core::pipeline::monitor_shards::MonitorShardReport;
use salescast_core::pipeline::predict_shards::ShardReport;
use salescast_core::pipeline::retrain_fan_in::DecidedAlready;
use salescast_core::pipeline::retrain_fit::FitReport;
use salescast_core::pipeline::retrain_shards::ShardStepReport;

use crate::render::Report;

/// What staging a shard's file did, in words.
fn staged(outcome: WriteOutcome) -> &'static str {
    match outcome {
        WriteOutcome::Written => "staged",
        WriteOutcome::Unchanged => "unchanged (the same bytes were there)",
        WriteOutcome::Replaced => "replaced",
    }
}

/// The earlier fan-in's report, its title first, then what this one did.
impl Report for DecidedAlready {
    fn human(&self) -> String {
        let (title, rest) = self.markdown.split_once('\n').unwrap_or((&self.markdown, ""));
        let (n, seq) = (self.shards, self.decision_sequence);
        format!(
            "{title}\n\n> Retried fan-in: an earlier fan-in of these {n} shards decided this run (decision #{seq}); nothing was decided or written now.\n{rest}"
        )
    }
}

impl Report for ShardReport {
    fn human(&self) -> String {
        format!(
            "model {} (champion {}), shard {}: forecast {} series for {} days after {}: {} rows ({} with default covariates)\n\
             {}: {} (staged for `predict --fan-in {}`; readers see nothing yet)\n",
            self.model,
            short(&self.version),
            self.shard,
            self.series,
            self.horizon_days,
            self.data_day,
            self.rows,
            self.unplanned_rows,
            staged(self.written.outcome),
            self.written.marker_key,
            self.shard.n,
        )
    }
}

impl Report for ShardStepReport {
    fn human(&self) -> String {
        let next = match self.step {
            "prepare" => format!("`retrain --fit {}`", self.shard.n),
            _ => format!("`retrain --fan-in {}`", self.shard.n),
        };
        format!(
            "model {}, {} of shard {} for {}: {} rows of {} series in {:.1} s\n\
             {} (staged for {next}; nothing is decided yet)\n",
            self.model,
            self.step,
            self.shard,
            self.data_day,
            self.rows,
            self.series,
            self.seconds,
            self.marker,
        )
    }
}

impl Report for FitReport {
    fn human(&self) -> String {
        format!(
            "model {}, fit of {} shards for {}: challenger {} ({}{}), {} of the {} stacked rows fitted, {} in {:.1} s\n\
             drift alerts: {}\n{} (staged for `retrain --score K/{}`; nothing is decided yet)\n",
            self.model,
            self.n,
            self.data_day,
            short(&self.challenger),
            self.family,
            self.rounds.map(|r| format!(", {r} rounds")).unwrap_or_default(),
            self.fit_rows,
            self.stacked_rows,
            self.search.reason,
            self.seconds,
            if self.drift_alerts.is_empty() {
                "none".to_string()
            } else {
                self.drift_alerts.join(", ")
            },
            self.marker,
            self.n,
        )
    }
}

impl Report for MonitorShardReport {
    fn human(&self) -> String {
        let days = match (self.days.first(), self.days.last()) {
            (Some(a), Some(b)) => format!("{} target days ({} .. {})", self.days.len(), a.day, b.day),
            _ => "no target day".to_string(),
        };
        format!(
            "model {}, monitor {}, shard {}: scored {days}: {} rows\n{}: {} (staged for `monitor --fan-in {}`; the scores table is unchanged)\ndone in {:.1} s",
            self.model,
            self.date,
            self.shard,
            self.rows,
            staged(self.written.outcome),
            self.written.marker_key,
            self.shard.n,
            self.seconds,
        )
    }
}
