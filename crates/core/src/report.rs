//! The run report of `retrain`: what was decided and why, the metrics of
//! challenger, champion and baseline side by side on the same holdout rows,
//! the worst series, live accuracy from the scores table beside the holdout,
//! the data window and the versions. JSON for machines, markdown fit for a
//! CI job summary.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::cost::CostEstimate;
use crate::digest::short;
use crate::drift::DriftReport;
use crate::evaluate::Metrics;
use crate::forecast::intervals::Calibration;
use crate::forecast::origins::HorizonScores;
use crate::live::{HoldoutFigures, LiveSummary, live_markdown};
use crate::models::Family;
use crate::noise::NoiseEstimate;
use crate::registry::{DecisionKind, Repair, Stored};
use crate::report_charts::{ChartFile, ChartInputs, LiveDay, SeriesPath, charts_markdown, report_charts};
use crate::thin_days::ThinDays;
use crate::train::{CandidateScore, SearchMode, SearchRecord};

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub model: String,
    pub run_date: NaiveDate,
    pub dry_run: bool,
    pub decision: DecisionKind,
    pub reason: String,
    /// The decision's number in the log (none in a dry run).
    pub decision_sequence: Option<u64>,
    pub champion_after: Option<String>,
    pub window: WindowSummary,
    pub challenger: ChallengerSummary,
    pub champion: Option<ChampionSummary>,
    pub baseline: Metrics,
    pub worst_series: Vec<SeriesRow>,
    pub seconds: Timings,
    /// This run's estimated cost (the report's own two writes not included).
    pub cost: Option<CostEstimate>,
    /// What reading the registry repaired before this run decided.
    pub repairs: Vec<Repair>,
    /// Live accuracy over the last 7 and 28 days up to the run date, from
    /// the lake's scores table (none when it has no scores then).
    pub live: Option<LiveSummary>,
    /// The newest data against the training window (`max_drift` is the one
    /// figure for metrics); none when it could not be measured.
    pub drift: Option<DriftReport>,
    /// The gate's noise check against the champion (none without a
    /// champion or with `promotion.confidence = 0`).
    pub noise: Option<NoiseEstimate>,
    /// The series the report's forecast charts draw, day by day on the holdout.
    pub series_paths: Vec<SeriesPath>,
    /// Live WAPE per scored target day of the last 60 days, for its chart.
    pub live_days: Vec<LiveDay>,
    /// How the challenger was trained: a full search or a warm refit of
    /// the champion's recipe, and why.
    pub search: Option<SearchRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowSummary {
    pub lake: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub trained_through: NaiveDate,
    pub holdout_first_day: NaiveDate,
    pub partition_files: usize,
    pub data_fingerprint: String,
    pub rows: usize,
    pub training_rows: usize,
    pub holdout_rows: usize,
    /// Days before the newest with far fewer series than the window's
    /// median: reported, not refused (`validation.history = "report"`).
    pub thin_days: ThinDays,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChallengerSummary {
    pub version: String,
    pub family: Family,
    /// The boosted-trees configuration picked (`training.gbdt_configs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbdt_config: Option<String>,
    pub size: usize,
    /// Whether storing it added a version (none in a dry run).
    pub stored: Option<Stored>,
    pub candidates: Vec<CandidateScore>,
    /// The boosting rounds its final fit ran (boosted trees only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
    /// Pooled over every horizon and rolling origin of the holdout: what
    /// the promotion gate compares.
    pub holdout: Metrics,
    /// One day ahead (horizon 1).
    pub one_day: Metrics,
    pub horizons: HorizonScores,
    /// The forecast intervals, calibrated on the inner validation window
    /// (none when it had too few forecasts).
    pub calibration: Option<Calibration>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChampionSummary {
    pub version: String,
    pub family: Family,
    pub holdout: Metrics,
    pub one_day: Metrics,
    pub horizons: HorizonScores,
    pub trained_through: NaiveDate,
    /// The champion was trained on days of this holdout: its score flatters it.
    pub saw_holdout: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesRow {
    pub series: String,
    pub actual: f64,
    pub challenger_wape: f64,
    pub champion_wape: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub read: f64,
    pub features: f64,
    pub train: f64,
    pub evaluate: f64,
    /// Measuring drift.
    pub drift: f64,
    pub total: f64,
    /// CPU seconds of the process (every thread) while training; none
    /// where the platform does not say (`/proc/self/stat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_cpu: Option<f64>,
}

/// How one metric is printed.
type MetricFormat = fn(&Metrics) -> String;

impl RunReport {
    /// WAPE per bucket of horizons for each model, and the challenger's
    /// interval coverage.
    fn horizon_table(&self) -> String {
        let c = &self.challenger;
        let mut md = "| horizons | challenger WAPE | challenger bias |".to_string();
        if self.champion.is_some() {
            md += " champion WAPE |";
        }
        let interval = c.calibration.as_ref().map(|k| k.interval * 100.0);
        if let Some(p) = interval {
            md += &format!(" {p:.0}% interval coverage |");
        }
        md += "\n|---|---:|---:|";
        md += &"---:|".repeat(usize::from(self.champion.is_some()) + usize::from(interval.is_some()));
        md += "\n";
        let one = format!(
            "| 1 (one day ahead) | {:.4} | {:+.4} |",
            c.one_day.wape, c.one_day.bias
        );
        let mut rows = vec![(one, self.champion.as_ref().map(|x| x.one_day.wape), None)];
        for (i, b) in c.horizons.buckets.iter().enumerate() {
            let champion = self
                .champion
                .as_ref()
                .and_then(|x| x.horizons.buckets.get(i))
                .map(|x| x.metrics.wape);
            let row = format!(
                "| {} | {:.4} | {:+.4} |",
                b.name(),
                b.metrics.wape,
                b.metrics.bias
            );
            rows.push((row, champion, b.coverage));
        }
        for (row, champion, coverage) in rows {
            md += &row;
            if self.champion.is_some() {
                md += &champion.map_or(" - |".to_string(), |w| format!(" {w:.4} |"));
            }
            if interval.is_some() {
                md += &coverage.map_or(" |".to_string(), |v| format!(" {:.1}% |", 100.0 * v));
            }
            md += "\n";
        }
        if interval.is_none() {
            md += "\nNo forecast intervals: the inner validation window had too few forecasts to calibrate them.\n";
        }
        md + "\n"
    }
}

impl RunReport {
    /// The report's SVG charts, written beside `report.md`.
    pub fn charts(&self) -> Vec<ChartFile> {
        report_charts(&ChartInputs {
            run_date: self.run_date,
            series_paths: &self.series_paths,
            calibration: self.challenger.calibration.as_ref(),
            challenger: &self.challenger.horizons,
            champion: self.champion.as_ref().map(|c| &c.horizons),
            live_days: &self.live_days,
        })
    }

    /// The holdout figures the live ones are set beside: the champion's on
    /// this run's holdout, or the challenger's when there is no champion.
    fn live_holdout(&self) -> HoldoutFigures {
        match &self.champion {
            Some(c) => HoldoutFigures {
                label: format!("champion `{}`", short(&c.version)),
                pooled: c.holdout.clone(),
                horizons: Some(c.horizons.clone()),
            },
            None => HoldoutFigures {
                label: format!("challenger `{}`", short(&self.challenger.version)),
                pooled: self.challenger.holdout.clone(),
                horizons: Some(self.challenger.horizons.clone()),
            },
        }
    }
}

pub fn metric_rows(columns: &[(&str, &Metrics)]) -> String {
    let mut text = String::from("| metric |");
    for (name, _) in columns {
        text += &format!(" {name} |");
    }
    text += "\n|---|";
    text += &"---:|".repeat(columns.len());
    text += "\n";
    let rows: [(&str, MetricFormat); 6] = [
        ("WAPE", |m| format!("{:.4}", m.wape)),
        ("MAE", |m| format!("{:.2}", m.mae)),
        ("RMSE", |m| format!("{:.2}", m.rmse)),
        ("sMAPE", |m| format!("{:.4}", m.smape)),
        ("bias", |m| format!("{:+.4}", m.bias)),
        ("rows", |m| m.rows.to_string()),
    ];
    for (label, value) in rows {
        text += &format!("| {label} |");
        for (_, m) in columns {
            text += &format!(" {} |", value(m));
        }
        text += "\n";
    }
    text
}

impl RunReport {
    /// The report as markdown, for people and CI job summaries.
    pub fn markdown(&self) -> String {
        let verb = match self.decision {
            DecisionKind::Promoted => "promoted",
            DecisionKind::Kept => "kept the champion",
            DecisionKind::Rejected => "rejected the challenger",
            DecisionKind::RolledBack => "rolled back",
        };
        let mut md = format!("# salescast retrain {}: {verb}\n\n", self.run_date);
        if self.dry_run {
            md += "**Dry run: nothing was written to the registry.**\n\n";
        }
        md += &format!("{}.\n\n", self.reason);
        if let Some(search) = &self.search {
            let mode = match search.mode {
                SearchMode::Full => "full search",
                SearchMode::Warm => "warm, no search",
            };
            md += &format!("**Training:** {mode}: {}.\n\n", search.reason);
        }
        for repair in &self.repairs {
            md += &format!("**Registry repaired before deciding:** {}.\n\n", repair.message);
        }
        if !self.window.thin_days.is_empty() {
            md += &format!(
                "**Thin days in the history (reported, not refused):** {}.\n\n",
                self.window.thin_days.summary()
            );
        }
        let challenger_name = format!(
            "challenger `{}` ({}{})",
            short(&self.challenger.version),
            self.challenger.family,
            self.challenger
                .gbdt_config
                .as_ref()
                .map_or(String::new(), |c| format!(", {c}"))
        );
        let champion_name = self
            .champion
            .as_ref()
            .map(|c| format!("champion `{}` ({})", short(&c.version), c.family));
        let mut columns = vec![(challenger_name.as_str(), &self.challenger.holdout)];
        if let (Some(name), Some(champion)) = (&champion_name, &self.champion) {
            columns.push((name.as_str(), &champion.holdout));
        }
        columns.push(("seasonal naive", &self.baseline));
        let h = self.challenger.horizons.horizon_days;
        md += &format!(
            "## Holdout {} .. {}: forecasts 1-{h} days ahead from every origin {} .. {}, pooled (same rows for every model)\n\n{}\n",
            self.window.holdout_first_day,
            self.window.last_day,
            self.challenger.horizons.first_origin,
            self.challenger.horizons.last_origin,
            metric_rows(&columns)
        );
        md += &self.horizon_table();
        if let Some(n) = &self.noise {
            md += &format!(
                "Noise check (paired bootstrap over {}, {} resamples of {} blocks, {} rows, seed {}): improvement {:.2}%, {}; \
                 {} noise.\n\n",
                n.resampled,
                n.resamples,
                n.blocks,
                n.rows,
                n.seed,
                100.0 * n.improvement,
                n.interval_text(),
                if n.above_noise() { "above" } else { "within" }
            );
        }
        if let Some(champion) = &self.champion
            && champion.saw_holdout
        {
            md += &format!(
                "> The champion was trained through {}, inside this holdout: its score is optimistic.\n\n",
                champion.trained_through
            );
        }
        if let Some(live) = &self.live {
            md += &live_markdown(live, Some(&self.live_holdout()));
        }
        md += "## Candidates (inner validation window, before the holdout)\n\n| candidate | WAPE | bias | rounds | fit s |\n|---|---:|---:|---:|---:|\n";
        for c in &self.challenger.candidates {
            md += &format!(
                "| {} | {:.4} | {:+.4} | {} | {:.1} |\n",
                c.label(),
                c.validation.wape,
                c.validation.bias,
                c.rounds.map_or("-".to_string(), |r| r.to_string()),
                c.seconds
            );
        }
        if let Some(drift) = &self.drift {
            md += &crate::drift::markdown(drift);
        }
        // The chart files are written beside report.md (never in a dry run).
        if !self.dry_run {
            md += "\n";
            md += &charts_markdown(&self.charts());
        }
        md += "\n## Worst series on the holdout (challenger)\n\n| series | actual | challenger WAPE | champion WAPE |\n|---|---:|---:|---:|\n";
        for row in &self.worst_series {
            let champion = row.champion_wape.map_or("-".to_string(), |w| format!("{w:.4}"));
            md += &format!(
                "| {} | {:.0} | {:.4} | {champion} |\n",
                row.series, row.actual, row.challenger_wape
            );
        }
        let w = &self.window;
        md += &format!(
            "\n## Data and versions\n\n- lake: {}\n- window: {} .. {} ({} partition files, {} rows, fingerprint `{}`)\n\
             - trained through {} on {} rows; holdout {} rows\n- challenger: `{}` ({} bytes){}\n- champion after this run: {}\n\
             - time: read {:.1} s, features {:.1} s, training {:.1} s, evaluation {:.1} s, drift {:.2} s, total {:.1} s\n",
            w.lake,
            w.first_day,
            w.last_day,
            w.partition_files,
            w.rows,
            short(&w.data_fingerprint),
            w.trained_through,
            w.training_rows,
            w.holdout_rows,
            self.challenger.version,
            self.challenger.size,
            match self.challenger.stored {
                Some(Stored::Added) => ", stored as a new version",
                Some(Stored::AlreadyThere) => ", already in the registry",
                Some(Stored::Repaired) =>
                    ", already in the registry but damaged: replaced with this run's bytes",
                None => "",
            },
            self.champion_after
                .as_deref()
                .map_or("none".to_string(), |v| format!("`{v}`")),
            self.seconds.read,
            self.seconds.features,
            self.seconds.train,
            self.seconds.evaluate,
            self.seconds.drift,
            self.seconds.total,
        );
        if let Some(seq) = self.decision_sequence {
            md += &format!("- decision log entry {seq}\n");
        }
        if let Some(cost) = &self.cost {
            md += &format!("- estimated cost of this run: {}\n", cost.summary());
        }
        md
    }
}
