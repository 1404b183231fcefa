//! CloudWatch Embedded Metric Format (EMF): a job's figures as JSON log lines
//! that CloudWatch Logs turns into metrics by itself, with no API call (and no
//! permission) of ours. Owns the `[metrics]` settings, the metric set of one
//! run and its rendering; `pipeline::metrics` fills a set from each job's
//! report, and the front end writes the lines to stderr.
//!
//! One document is one JSON object on one line:
//! `{"_aws":{"Timestamp":MS,"CloudWatchMetrics":[{"Namespace":..,"Dimensions":[[..]],
//! "Metrics":[{"Name":..,"Unit":..}]}]},"Model":..,"Command":..,"<metric>":VALUE,..}`.
//! Job figures (duration, cost, rows, decisions) are published per model and
//! command (`[["Model","Command"]]`); the model's health (holdout and live
//! WAPE, drift) per model only (`[["Model"]]`), whichever command measured it,
//! so an alarm on it does not depend on the command.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::setting::{Invalid, invalid};

/// The namespace of the metrics unless `metrics.namespace` says otherwise.
pub const DEFAULT_NAMESPACE: &str = "salescast";
/// At most this many metrics in one document (the format's limit per
/// directive; kept per document, as AWS's own libraries do).
pub const MAX_METRICS: usize = 100;
/// At most this many dimensions in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;
/// The longest namespace CloudWatch takes.
const MAX_NAMESPACE: usize = 255;
/// The dimension naming the model (`training.model_name`).
pub const MODEL: &str = "Model";
/// The dimension naming the command (`retrain`, `predict`, ...).
pub const COMMAND: &str = "Command";

/// Whether a run writes its EMF lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmfMode {
    /// Only where stderr goes to CloudWatch Logs: inside AWS CodeBuild.
    #[default]
    Auto,
    On,
    Off,
}

impl FromStr for EmfMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "on" | "true" | "1" => Ok(Self::On),
            "off" | "false" | "0" => Ok(Self::Off),
            other => Err(format!("{other:?}: use auto, on or off")),
        }
    }
}

/// The `[metrics]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// `auto` (in CodeBuild only), `on` or `off`; `SALESCAST_EMF` overrides it.
    pub emf: EmfMode,
    /// The CloudWatch namespace of the metrics.
    pub namespace: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            emf: EmfMode::Auto,
            namespace: DEFAULT_NAMESPACE.into(),
        }
    }
}

impl MetricsSettings {
    pub fn check(&self) -> Result<(), Invalid> {
        let ns = &self.namespace;
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._#:/-".contains(c);
        if ns.is_empty() || ns.len() > MAX_NAMESPACE || !ns.chars().all(allowed) {
            return Err(invalid(
                "metrics.namespace",
                format!("{ns:?}: 1 to {MAX_NAMESPACE} of letters, digits and . _ # : / -"),
            ));
        }
        if ns.starts_with("AWS/") {
            return Err(invalid("metrics.namespace", "AWS/ is reserved for AWS services"));
        }
        Ok(())
    }

    /// Whether this run writes EMF lines; `in_codebuild` decides `auto`.
    pub fn enabled(&self, in_codebuild: bool) -> bool {
        match self.emf {
            EmfMode::On => true,
            EmfMode::Off => false,
            EmfMode::Auto => in_codebuild,
        }
    }
}

/// Whether this process runs in an AWS CodeBuild build (whose output the
/// project's log group keeps, where CloudWatch extracts the metrics).
pub fn in_codebuild() -> bool {
    std::env::var_os("CODEBUILD_BUILD_ID").is_some_and(|v| !v.is_empty())
}

/// The CloudWatch units this project uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    /// A ratio (WAPE, PSI) or an amount (US dollars): CloudWatch has no unit for them.
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::None => "None",
        }
    }
}

/// Which dimension set a metric is published under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `[Model, Command]`: what one job did.
    Job,
    /// `[Model]`: how the model is doing, whichever command measured it.
    Model,
}

impl Scope {
    fn dimensions(self) -> &'static [&'static str] {
        match self {
            Scope::Job => &[MODEL, COMMAND],
            Scope::Model => &[MODEL],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Metric {
    name: String,
    unit: Unit,
    value: f64,
    scope: Scope,
}

/// The live accuracy of one bucket of horizons, next to the champion's
/// holdout WAPE on the same bucket: the input of [`JobMetrics::live_accuracy`].
#[derive(Debug, Clone, PartialEq)]
pub struct LiveBucket {
    /// The bucket's name as the report shows it (`1-7`).
    pub bucket: String,
    pub live_wape: f64,
    pub holdout_wape: f64,
}

/// The metrics of one run of one command, rendered as EMF documents.
#[derive(Debug, Clone, PartialEq)]
pub struct JobMetrics {
    namespace: String,
    model: String,
    command: String,
    metrics: Vec<Metric>,
    /// Members of the document that are no metric (the run date, a version):
    /// searchable in CloudWatch Logs Insights, not billed as metrics.
    properties: Vec<(String, Value)>,
}

impl JobMetrics {
    pub fn new(namespace: &str, model: &str, command: &str) -> Self {
        Self {
            namespace: namespace.into(),
            model: model.into(),
            command: command.into(),
            metrics: Vec::new(),
            properties: Vec::new(),
        }
    }

    /// A figure of this job (published per model and command). A value
    /// that is not finite is left out: CloudWatch rejects NaN and infinities.
    pub fn job(&mut self, name: &str, unit: Unit, value: f64) -> &mut Self {
        self.put(name, unit, value, Scope::Job)
    }

    /// A figure of the model's health (published per model).
    pub fn model(&mut self, name: &str, unit: Unit, value: f64) -> &mut Self {
        self.put(name, unit, value, Scope::Model)
    }

    /// A member that is no metric. Names taken by a dimension or a metric are ignored.
    pub fn property(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        if !self.taken(name) {
            self.properties.push((name.into(), value.into()));
        }
        self
    }

    fn taken(&self, name: &str) -> bool {
        name == MODEL
            || name == COMMAND
            || name == "_aws"
            || self.metrics.iter().any(|m| m.name == name)
            || self.properties.iter().any(|(p, _)| p == name)
    }

    fn put(&mut self, name: &str, unit: Unit, value: f64, scope: Scope) -> &mut Self {
        if !value.is_finite() || name.is_empty() {
            return self;
        }
        if let Some(old) = self.metrics.iter_mut().find(|m| m.name == name) {
            *old = Metric {
                name: name.into(),
                unit,
                value,
                scope,
            };
        } else if !self.taken(name) {
            self.metrics.push(Metric {
                name: name.into(),
                unit,
                value,
                scope,
            });
        }
        self
    }

    /// Hook for the live-accuracy monitor: `LiveWape_h<bucket>` per bucket,
    /// and `LiveWapeExcess`, the largest share by which a bucket's live WAPE
    /// exceeds its holdout WAPE (`live / holdout - 1`; negative when every
    /// bucket does better live). Buckets without a positive holdout WAPE add
    /// their live WAPE only.
    pub fn live_accuracy(&mut self, buckets: &[LiveBucket]) -> &mut Self {
        let mut excess: Option<f64> = None;
        for b in buckets {
            self.model(&format!("LiveWape_h{}", b.bucket), Unit::None, b.live_wape);
            if b.holdout_wape > 0.0 && b.live_wape.is_finite() && b.holdout_wape.is_finite() {
                let share = b.live_wape / b.holdout_wape - 1.0;
                excess = Some(excess.map_or(share, |e| e.max(share)));
            }
        }
        if let Some(excess) = excess {
            self.model("LiveWapeExcess", Unit::None, excess);
        }
        self
    }

    /// Hook for the drift check: `MaxDrift`, the largest drift statistic
    /// over the features and the target as a share of its own alert
    /// threshold (1 or more: an alert), and `DriftAlerts`, how many of them
    /// crossed their alert threshold.
    pub fn drift(&mut self, max_drift: f64, alerts: usize) -> &mut Self {
        self.model("MaxDrift", Unit::None, max_drift);
        self.model("DriftAlerts", Unit::Count, alerts as f64)
    }

    /// The value of a metric, if the set holds it.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    /// The metric names, in the order they were put.
    pub fn names(&self) -> Vec<&str> {
        self.metrics.iter().map(|m| m.name.as_str()).collect()
    }

    /// The EMF documents of this set, stamped `timestamp_ms` (milliseconds
    /// since the epoch): one per [`MAX_METRICS`] metrics, none for an empty set.
    pub fn documents(&self, timestamp_ms: i64) -> Vec<Value> {
        self.metrics
            .chunks(MAX_METRICS)
            .map(|chunk| self.document(chunk, timestamp_ms))
            .collect()
    }

    fn document(&self, chunk: &[Metric], timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        let mut directives = Vec::new();
        for scope in [Scope::Job, Scope::Model] {
            let definitions: Vec<Value> = chunk
                .iter()
                .filter(|m| m.scope == scope)
                .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
                .collect();
            if !definitions.is_empty() {
                directives.push(json!({
                    "Namespace": self.namespace,
                    "Dimensions": [scope.dimensions()],
                    "Metrics": definitions,
                }));
            }
        }
        root.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
        );
        root.insert(MODEL.into(), Value::from(self.model.as_str()));
        root.insert(COMMAND.into(), Value::from(self.command.as_str()));
        for (name, value) in &self.properties {
            root.insert(name.clone(), value.clone());
        }
        for m in chunk {
            root.insert(m.name.clone(), json!(m.value));
        }
        Value::Object(root)
    }

    /// The documents as lines of compact JSON (no line ending).
    pub fn lines(&self, timestamp_ms: i64) -> Vec<String> {
        self.documents(timestamp_ms)
            .iter()
            .map(Value::to_string)
            .collect()
    }
}

#[cfg(test)]
#[path = "emf_tests.rs"]
mod tests;
