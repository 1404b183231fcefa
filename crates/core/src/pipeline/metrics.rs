//! Each job's CloudWatch metrics, taken from its report (see `emf` for the
//! format and the dimensions). Every successful run counts `Succeeded = 1`
//! (the missing-run alarm watches it), a failed one `Failed = 1`; retrain adds
//! its decision as a count of its kind, the holdout WAPE of challenger and
//! champion, rows, duration and estimated cost; predict and ingest their rows
//! and duration. Each metric is billed by CloudWatch per month, so what is
//! only context (run date, versions, series) is a plain member of the
//! document (a property), searchable in Logs Insights and free.
//!
//! The live WAPE per bucket and the drift are added to a set with
//! [`JobMetrics::live_accuracy`] and [`JobMetrics::drift`] by the jobs that
//! measure them.

use crate::emf::{JobMetrics, LiveBucket, MetricsSettings, Unit};
use crate::live::{HoldoutFigures, LiveSummary};
use crate::registry::DecisionKind;
use crate::report::RunReport;

use super::monitor::MonitorReport;
use super::{IngestReport, PredictReport, RollbackReport};

/// The metric that counts a decision of this kind.
pub fn decision_metric(kind: DecisionKind) -> &'static str {
    match kind {
        DecisionKind::Promoted => "Promoted",
        DecisionKind::Kept => "Kept",
        DecisionKind::Rejected => "Rejected",
        DecisionKind::RolledBack => "RolledBack",
    }
}

fn succeeded(settings: &MetricsSettings, model: &str, command: &str, seconds: f64) -> JobMetrics {
    let mut set = JobMetrics::new(&settings.namespace, model, command);
    set.job("Succeeded", Unit::Count, 1.0)
        .job("DurationSeconds", Unit::Seconds, seconds);
    set
}

/// A retrain's metrics; none for a dry run, which decides nothing.
pub fn retrain(report: &RunReport, settings: &MetricsSettings) -> Option<JobMetrics> {
    if report.dry_run {
        return None;
    }
    let mut set = succeeded(settings, &report.model, "retrain", report.seconds.total);
    set.job(decision_metric(report.decision), Unit::Count, 1.0)
        .job("Rows", Unit::Count, report.window.rows as f64)
        .model(
            "ChallengerHoldoutWape",
            Unit::None,
            report.challenger.holdout.wape,
        );
    if let Some(cost) = &report.cost {
        set.job("CostUsd", Unit::None, cost.total_usd);
    }
    if let Some(champion) = &report.champion {
        set.model("ChampionHoldoutWape", Unit::None, champion.holdout.wape);
    }
    if let Some(drift) = &report.drift {
        set.drift(drift.max_drift, drift.alerts.len());
    }
    set.property("RunDate", report.run_date.to_string())
        .property("Decision", report.decision.as_str())
        .property("Challenger", report.challenger.version.as_str());
    if let Some(after) = &report.champion_after {
        set.property("ChampionAfter", after.as_str());
    }
    Some(set)
}

pub fn predict(report: &PredictReport, settings: &MetricsSettings) -> JobMetrics {
    let mut set = succeeded(settings, &report.model, "predict", report.seconds);
    set.job("Rows", Unit::Count, report.rows as f64)
        .property("Series", report.series)
        .property("RunDate", report.data_day.to_string())
        .property("Champion", report.version.as_str());
    set
}

/// A monitor's metrics: the rows it scored and, beside the champion's
/// holdout WAPE, the live WAPE of the last 7 days per horizon bucket (the
/// live-accuracy alarm watches their largest excess).
pub fn monitor(report: &MonitorReport, settings: &MetricsSettings) -> JobMetrics {
    let mut set = succeeded(settings, &report.model, "monitor", report.seconds);
    let rows: usize = report.days.iter().map(|d| d.rows).sum();
    set.job("Rows", Unit::Count, rows as f64)
        .property("RunDate", report.date.to_string());
    if let Some(live) = &report.live {
        set.live_accuracy(&live_buckets(live, report.holdout.as_ref(), 7));
    }
    set
}

/// The live WAPE over the last `days` days per bucket, beside the holdout's.
pub(crate) fn live_buckets(
    live: &LiveSummary,
    holdout: Option<&HoldoutFigures>,
    days: u32,
) -> Vec<LiveBucket> {
    let (Some(holdout), Some(window)) = (holdout, live.windows.iter().find(|w| w.days == days)) else {
        return Vec::new();
    };
    window
        .buckets
        .iter()
        .filter_map(|b| {
            let held = holdout.bucket(b.first, b.last, live.horizon_days)?;
            Some(LiveBucket {
                bucket: b.name(),
                live_wape: b.metrics.wape,
                holdout_wape: held.wape,
            })
        })
        .collect()
}

/// An ingest's metrics, for `model` (the configured one), timed by the caller.
pub fn ingest(report: &IngestReport, model: &str, seconds: f64, settings: &MetricsSettings) -> JobMetrics {
    let mut set = succeeded(settings, model, "ingest", seconds);
    set.job("Rows", Unit::Count, report.rows as f64)
        .property("DaysWritten", report.days.written);
    set
}

pub fn rollback(report: &RollbackReport, seconds: f64, settings: &MetricsSettings) -> JobMetrics {
    let mut set = succeeded(settings, &report.model, "rollback", seconds);
    set.job(decision_metric(DecisionKind::RolledBack), Unit::Count, 1.0)
        .property("ChampionAfter", report.to.as_str());
    set
}

/// A failed run of `command`: `Failed = 1`, with the exit code as a property.
pub fn failed(settings: &MetricsSettings, model: &str, command: &str, exit_code: u8) -> JobMetrics {
    let mut set = JobMetrics::new(&settings.namespace, model, command);
    set.job("Failed", Unit::Count, 1.0)
        .property("ExitCode", exit_code);
    set
}
