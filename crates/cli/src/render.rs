//! Rendering reports for a person at a terminal: one `Report` impl per
//! pipeline report (`--json` prints the report itself).

use serde::Serialize;

use salescast_core::accounts::TokenView;
use salescast_core::digest::short;
use salescast_core::evaluate::Metrics;
use salescast_core::lake::WriteOutcome;
use salescast_core::pipeline::backtest::BacktestReport;
use salescast_core::pipeline::check::CheckReport;
use salescast_core::pipeline::demo::DemoReport;
use salescast_core::pipeline::doctor::{DoctorReport, Severity};
use salescast_core::pipeline::ingest::IngestReport;
use salescast_core::pipeline::models::{History, VersionDetail, VersionList};
use salescast_core::pipeline::monitor::MonitorReport;
use salescast_core::pipeline::predict::PredictReport;
use salescast_core::pipeline::rollback::RollbackReport;
use salescast_core::pipeline::users::UsersReport;
use salescast_core::registry::Repair;
use salescast_core::report::{RunReport, metric_rows};

/// One line per repair that reading the registry made, to print first.
fn repairs_text(repairs: &[Repair]) -> String {
    repairs
        .iter()
        .map(|r| format!("repaired the registry: {}\n", r.message))
        .collect()
}

/// What a command hands back to be printed.
pub trait Report: Serialize {
    /// The report for a person reading a terminal.
    fn human(&self) -> String;
}

impl Report for CheckReport {
    fn human(&self) -> String {
        let thin = if self.thin_days.is_empty() {
            String::new()
        } else {
            format!(
                "\nthin days in the history (reported, not refused): {}",
                self.thin_days.summary()
            )
        };
        format!(
            "lake {}\nwindow {} .. {}: {} partition files, {} rows, {} series (fingerprint {})\n\
             features: {} numeric, {} categorical; {} rows with full history\n\
             read and validated in {:.2} s, features built in {:.2} s{thin}",
            self.lake,
            self.first_day,
            self.last_day,
            self.partition_files,
            self.rows,
            self.series,
            short(&self.fingerprint),
            self.features.numeric.len(),
            self.features.categorical.len(),
            self.rows_with_full_history,
            self.read_seconds,
            self.feature_seconds,
        )
    }
}

impl Report for RunReport {
    fn human(&self) -> String {
        self.markdown()
    }
}

impl Report for BacktestReport {
    fn human(&self) -> String {
        let mut md = format!(
            "# salescast backtest {} .. {}: {} would be picked\n\n",
            self.from, self.to, self.picked
        );
        md += &format!(
            "One day ahead, every model trained once on {} .. {} ({} rows); {} backtest rows.\n\n",
            self.first_day, self.trained_through, self.training_rows, self.backtest_rows
        );
        let names: Vec<String> = self
            .families
            .iter()
            .map(|f| {
                if f.picked {
                    format!("{} (picked)", f.label())
                } else {
                    f.label()
                }
            })
            .collect();
        let mut columns: Vec<(&str, &Metrics)> = names
            .iter()
            .zip(&self.families)
            .map(|(n, f)| (n.as_str(), &f.backtest))
            .collect();
        columns.push(("seasonal naive baseline", &self.baseline));
        md += &format!(
            "## Backtest days (same rows for every model)\n\n{}\n",
            metric_rows(&columns)
        );
        let buckets: Vec<String> = self.baseline_horizons.buckets.iter().map(|b| b.name()).collect();
        md += &format!(
            "## Families\n\n| family | validation WAPE | backtest WAPE (1 day) | {} | fit s |\n|---|---:|---:|{}---:|\n",
            buckets
                .iter()
                .map(|b| format!("WAPE {b} days"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---:|".repeat(buckets.len())
        );
        let per_bucket = |h: &salescast_core::forecast::origins::HorizonScores| {
            h.buckets
                .iter()
                .map(|b| format!("{:.4}", b.metrics.wape))
                .collect::<Vec<_>>()
                .join(" | ")
        };
        for f in &self.families {
            md += &format!(
                "| {} | {:.4} | {:.4} | {} | {:.1} |\n",
                f.label(),
                f.validation.wape,
                f.backtest.wape,
                per_bucket(&f.horizons),
                f.fit_seconds
            );
        }
        md += &format!(
            "| seasonal naive baseline | - | {:.4} | {} | - |\n",
            self.baseline.wape,
            per_bucket(&self.baseline_horizons)
        );
        md += &format!(
            "\n## Per day ({} against the baseline)\n\n| day | rows | actual | WAPE | baseline WAPE |\n|---|---:|---:|---:|---:|\n",
            self.picked
        );
        for d in &self.days {
            md += &format!(
                "| {} | {} | {:.0} | {:.4} | {:.4} |\n",
                d.day, d.rows, d.actual, d.picked_wape, d.baseline_wape
            );
        }
        md += &format!(
            "\n- lake: {} ({} partition files, fingerprint `{}`)\n- time: read {:.1} s, features {:.1} s, training and scoring {:.1} s, total {:.1} s\n",
            self.lake,
            self.partition_files,
            short(&self.data_fingerprint),
            self.seconds.read,
            self.seconds.features,
            self.seconds.train,
            self.seconds.total
        );
        md
    }
}

impl Report for PredictReport {
    fn human(&self) -> String {
        let mut text = format!(
            "model {} (champion {}): forecast {} series for {} days after {}: {} rows ({} from plans, {} with default covariates)\n",
            self.model,
            short(&self.version),
            self.series,
            self.horizon_days,
            self.data_day,
            self.rows,
            self.planned_rows,
            self.unplanned_rows,
        );
        if let Some(n) = self.fan_in {
            text += &format!("fan-in of {n} shards, every one complete and from the champion\n");
        }
        text += &format!(
            "{}: {} ({} data files)\n",
            match self.written.outcome {
                WriteOutcome::Written => "written",
                WriteOutcome::Unchanged => "unchanged (the same bytes were there)",
                WriteOutcome::Replaced => "replaced",
            },
            self.written.manifest_key,
            self.written.manifest.files.len(),
        );
        let interval = self.interval.map_or("no interval".to_string(), |p| {
            format!("{:.0}% interval", 100.0 * p)
        });
        if let Some(first) = self.preview.first() {
            text += &format!("\nseries {}, the next days ({interval}):\n", first.series);
            text += "  day         forecast      lower      upper  plan\n";
            for row in &self.preview {
                let bound = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
                text += &format!(
                    "  {}  {:>9.0}  {:>9}  {:>9}  {}\n",
                    row.target_date,
                    row.forecast,
                    bound(row.lower),
                    bound(row.upper),
                    if row.planned { "yes" } else { "default" }
                );
            }
        }
        text + &format!("done in {:.1} s", self.seconds)
    }
}

impl Report for MonitorReport {
    fn human(&self) -> String {
        let mut md = format!("# salescast monitor {}: model {}\n\n", self.date, self.model);
        md += &match self.fan_in {
            Some(n) if self.committed_already => format!(
                "> Retried fan-in: an earlier fan-in of these {n} shards wrote these days from the same forecasts and actuals; nothing was written now.\n\n"
            ),
            Some(n) => format!("Fan-in of {n} shards, every one complete and current.\n\n"),
            None => String::new(),
        };
        if self.days.is_empty() {
            md += &format!(
                "No stored forecast targets {} or the {} days before it: nothing to score.\n\n",
                self.date,
                self.horizon_days.saturating_sub(1)
            );
        } else {
            md += "| target day | origins | rows | open rows | WAPE (open) | bias | no actual |\n|---|---|---:|---:|---:|---:|---:|\n";
            for d in &self.days {
                let origins = match (d.origins.first(), d.origins.last()) {
                    (Some(a), Some(b)) if a != b => format!("{a} .. {b} ({})", d.origins.len()),
                    (Some(a), _) => a.to_string(),
                    _ => "-".to_string(),
                };
                md += &format!(
                    "| {} | {origins} | {} | {} | {:.4} | {:+.4} | {} |\n",
                    d.day, d.rows, d.open_rows, d.metrics.wape, d.metrics.bias, d.without_actual
                );
            }
            let w = &self.written;
            md += &format!(
                "\nscores table: {} days written, {} unchanged, {} replaced\n\n",
                w.written, w.unchanged, w.replaced
            );
        }
        match &self.live {
            Some(live) => md += &salescast_core::live::live_markdown(live, self.holdout.as_ref()),
            None => md += "No scores in the last 28 days: no live accuracy yet.\n\n",
        }
        if let Some(h) = &self.holdout
            && h.horizons.is_none()
        {
            md += &format!(
                "The holdout figure of the {} is its pooled 1-{} WAPE (its manifest); the run report that stored it is gone.\n\n",
                h.label, self.horizon_days
            );
        }
        md + &format!("done in {:.1} s", self.seconds)
    }
}

impl Report for RollbackReport {
    fn human(&self) -> String {
        format!(
            "{}model {}: rolled back from {} to {} (decision {}): {}",
            repairs_text(&self.repairs),
            self.model,
            self.from,
            self.to,
            self.decision_sequence,
            self.reason
        )
    }
}

impl Report for UsersReport {
    fn human(&self) -> String {
        if self.action.starts_with("token") {
            return tokens_text(self);
        }
        let mut text = match self.action {
            "listed" if self.users.is_empty() => "no users yet: add the first admin with \
                `salescast users add NAME --role admin --password-stdin`"
                .to_string(),
            "listed" => String::new(),
            action => format!("{}: ", action.replace('_', " ")),
        };
        for user in &self.users {
            let stores = if user.stores.is_empty() {
                String::new()
            } else {
                format!(" (stores {})", user.stores.join(", "))
            };
            let disabled = if user.disabled { ", disabled" } else { "" };
            text.push_str(&format!(
                "{} {}{stores}{disabled}\n",
                user.name,
                user.role.as_str()
            ));
        }
        text.trim_end().to_string()
    }
}

/// What a token command did: the new token's text once, or the tokens as a table.
fn tokens_text(report: &UsersReport) -> String {
    let line = |t: &TokenView| format!("{} for {} ({:?})", t.id, t.user, t.label);
    match (report.action, report.tokens.first(), &report.token) {
        ("token_added", Some(t), Some(text)) => format!(
            "token added: {}\n{text}\nThis token is not shown again: keep it now (only its SHA-256 hash is stored). \
             Send it as `Authorization: Bearer <token>`.",
            line(t)
        ),
        ("token_revoked", Some(t), _) => format!("token revoked: {}", line(t)),
        _ if report.tokens.is_empty() => {
            "no API tokens yet: make one with `salescast users token-add USER --label TEXT`".to_string()
        }
        _ => {
            let mut text = format!(
                "{:<16}  {:<20}  {:<19}  {:<19}  label\n",
                "id", "user", "created", "revoked"
            );
            let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
            for t in &report.tokens {
                text += &format!(
                    "{:<16}  {:<20}  {:<19}  {:<19}  {}\n",
                    t.id,
                    t.user,
                    time(t.created_at),
                    t.revoked_at.map_or("-".to_string(), time),
                    t.label
                );
            }
            text.trim_end().to_string()
        }
    }
}

impl Report for IngestReport {
    fn human(&self) -> String {
        let mut text = format!("lake {}\n", self.lake);
        if let (Some(first), Some(last)) = (self.first_day, self.last_day) {
            let events = self
                .events
                .map(|n| format!(" (summed from {n} events)"))
                .unwrap_or_default();
            text += &format!(
                "sales: {} rows{events}, {first} .. {last}: {} days written, {} unchanged, {} replaced\n",
                self.rows, self.days.written, self.days.unchanged, self.days.replaced
            );
        }
        if let Some(plans) = &self.plans
            && let (Some(first), Some(last)) = (plans.first_day, plans.last_day)
        {
            text += &format!(
                "plans: {} rows, {first} .. {last}: {} days written, {} unchanged, {} replaced\n",
                plans.rows, plans.days.written, plans.days.unchanged, plans.days.replaced
            );
        }
        for (table, outcome) in &self.attributes {
            text += &format!("attributes {table}: {outcome:?}\n").to_lowercase();
        }
        for (name, outcome) in &self.calendars {
            text += &format!("calendar {name}: {outcome:?}\n").to_lowercase();
        }
        text.trim_end().to_string()
    }
}

impl Report for VersionList {
    fn human(&self) -> String {
        let mut text = repairs_text(&self.repairs);
        text += &format!("model {} ({} versions)\n", self.model, self.versions.len());
        text += "  version       family          created              trained through  holdout WAPE\n";
        for m in &self.versions {
            let mark = if self.champion.as_deref() == Some(m.version.as_str()) {
                "*"
            } else {
                " "
            };
            text += &format!(
                "{mark} {}  {:<15} {}  {}       {:.4}\n",
                short(&m.version),
                m.family.to_string(),
                m.created_at.format("%Y-%m-%d %H:%M:%S"),
                m.lineage.trained_through,
                m.holdout_metrics.wape
            );
        }
        for u in &self.unreadable {
            text += &format!("! {}  unreadable: {}: {}\n", short(&u.version), u.uri, u.problem);
        }
        text += "(* champion";
        if !self.unreadable.is_empty() {
            text += "; ! a version whose manifest does not read back: remove its folder or rerun the retrain that made it";
        }
        text += ")";
        text
    }
}

impl Report for VersionDetail {
    fn human(&self) -> String {
        let text = serde_json::to_string_pretty(&self.manifest).unwrap_or_default();
        format!("{}{text}", if self.champion { "(champion)\n" } else { "" })
    }
}

impl Report for History {
    fn human(&self) -> String {
        let mut text = repairs_text(&self.repairs);
        text += &format!("model {}: {} decisions\n", self.model, self.decisions.len());
        fn or_dash(v: &Option<String>) -> &str {
            v.as_deref().map_or("-", short)
        }
        for d in &self.decisions {
            text += &format!(
                "{:>4}  {}  {:<12} {} -> {}  by {}: {}\n",
                d.sequence,
                d.at.format("%Y-%m-%d %H:%M:%S"),
                d.what.kind.as_str(),
                or_dash(&d.what.champion_before),
                or_dash(&d.what.champion_after),
                d.what.actor,
                d.what.reason
            );
        }
        text.trim_end().to_string()
    }
}

impl Report for DemoReport {
    fn human(&self) -> String {
        let mut text = format!(
            "sample data written to {0}/input, lake {0}/lake, registry {0}/registry\n\n== ingest\n{1}\n\n== retrain, day by day\n",
            self.folder,
            self.ingest.human()
        );
        for run in &self.runs {
            text += &format!(
                "{}  {:<9} {} ({}), {:.1} s: {}\n",
                run.date,
                run.decision.as_str(),
                short(&run.challenger),
                run.family,
                run.seconds,
                run.reason
            );
        }
        if let Some(rollback) = &self.rollback {
            text += &format!("\n== rollback\n{}\n", rollback.human());
        }
        text += &format!("\n== predict\n{}\n", self.forecast.human());
        text += &format!("\n== models history\n{}", self.history.human());
        text += &format!(
            "\n\nThe newest run report: {}/registry/sales/runs/{}/report.md",
            self.folder,
            self.runs.last().map(|r| r.date.to_string()).unwrap_or_default()
        );
        text
    }
}

impl Report for DoctorReport {
    fn human(&self) -> String {
        let mut text = repairs_text(&self.repairs);
        text.push_str(&format!(
            "registry {} (model {}), lake {}\n\
             champion {}; {} decisions; {} whole versions; {} committed forecast days; {} sales days\n",
            self.registry,
            self.model,
            self.lake,
            self.champion.as_deref().map_or("(none)", short),
            self.decisions,
            self.whole_versions,
            self.prediction_days,
            self.sales_days,
        ));
        if self.findings.is_empty() {
            text.push_str("no problem found");
        }
        for finding in &self.findings {
            let label = match finding.severity {
                Severity::Problem => "PROBLEM",
                Severity::Incomplete => "incomplete",
            };
            text.push_str(&format!(
                "{label}: {}: {}\n  fix: {}\n",
                finding.uri, finding.what, finding.fix
            ));
        }
        text.trim_end().to_string()
    }
}
