//! Forecast metrics, computed on exactly the rows given: WAPE (the primary
//! one), MAE, RMSE, sMAPE, bias, and WAPE per series; and the promotion
//! gate (fixed margin, bias, drift, and the noise check of `noise`).

use serde::{Deserialize, Serialize};

use crate::noise::NoiseEstimate;

/// When a challenger replaces the champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromotionSettings {
    /// Promote when challenger WAPE < champion WAPE x (1 - min_improvement).
    pub min_improvement: f64,
    /// Never promote a challenger whose |bias| on the holdout is above this.
    pub max_abs_bias: f64,
    /// Never promote when the newest data drifted: a drift alert on any
    /// feature or the target (the newest day against like weekdays of the
    /// training window, or the newest 7 days against the window; `drift`).
    pub refuse_on_drift: bool,
    /// Against a champion, promote only when the improvement is larger than
    /// its noise: the lower bound of its two-sided interval at this
    /// confidence (a paired bootstrap over series, `noise`) is above 0.
    /// 0 switches the check off (the fixed margin alone).
    pub confidence: f64,
    /// Bootstrap resamples behind that interval.
    pub resamples: u32,
}

impl Default for PromotionSettings {
    fn default() -> Self {
        Self {
            min_improvement: 0.005,
            max_abs_bias: 0.15,
            refuse_on_drift: false,
            confidence: 0.9,
            resamples: 1000,
        }
    }
}

impl PromotionSettings {
    pub fn check(&self) -> Result<(), crate::setting::Invalid> {
        use crate::setting::invalid;
        if !(0.0..1.0).contains(&self.min_improvement) {
            return Err(invalid(
                "promotion.min_improvement",
                "must be at least 0 and below 1",
            ));
        }
        if !(self.max_abs_bias.is_finite() && self.max_abs_bias > 0.0) {
            return Err(invalid("promotion.max_abs_bias", "must be a number > 0"));
        }
        if !(0.0..1.0).contains(&self.confidence) {
            return Err(invalid(
                "promotion.confidence",
                "must be at least 0 (0 = no noise check) and below 1, e.g. 0.9",
            ));
        }
        if self.confidence > 0.0 && !(100..=100_000).contains(&self.resamples) {
            return Err(invalid("promotion.resamples", "must be 100 to 100000"));
        }
        Ok(())
    }
}

/// Scores of one set of predictions against the actual values. Records with
/// a `null` metric (JSON's spelling of a non-finite number, written by older
/// versions) read back with NaN there; the registry refuses to write one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub rows: usize,
    /// sum |error| / sum |actual|.
    #[serde(deserialize_with = "nan_if_null")]
    pub wape: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub mae: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub rmse: f64,
    /// mean of 2|error| / (|actual| + |predicted|), rows where both are 0 count 0.
    #[serde(deserialize_with = "nan_if_null")]
    pub smape: f64,
    /// sum (predicted - actual) / sum |actual|: > 0 over-forecasts.
    #[serde(deserialize_with = "nan_if_null")]
    pub bias: f64,
}

impl Metrics {
    /// Every metric is a finite number (so its JSON reads back as written).
    pub fn is_finite(&self) -> bool {
        [self.wape, self.mae, self.rmse, self.smape, self.bias]
            .iter()
            .all(|v| v.is_finite())
    }
}

/// A number, or NaN for `null`.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// WAPE of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesScore {
    pub series: String,
    pub rows: usize,
    pub actual: f64,
    pub wape: f64,
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

pub fn metrics(actual: &[f64], predicted: &[f64]) -> Metrics {
    assert_eq!(
        actual.len(),
        predicted.len(),
        "metrics need one prediction per actual"
    );
    let n = actual.len();
    let (mut abs_err, mut sq_err, mut signed, mut total, mut smape) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (&y, &p) in actual.iter().zip(predicted) {
        let e = p - y;
        abs_err += e.abs();
        sq_err += e * e;
        signed += e;
        total += y.abs();
        let scale = y.abs() + p.abs();
        if scale > 0.0 {
            smape += 2.0 * e.abs() / scale;
        }
    }
    let nf = n.max(1) as f64;
    Metrics {
        rows: n,
        wape: ratio(abs_err, total),
        mae: abs_err / nf,
        rmse: (sq_err / nf).sqrt(),
        smape: smape / nf,
        bias: ratio(signed, total),
    }
}

/// WAPE per series, worst first (ties by name, so the order is stable).
pub fn per_series(series: &[String], actual: &[f64], predicted: &[f64]) -> Vec<SeriesScore> {
    let mut sums: std::collections::BTreeMap<&str, (usize, f64, f64)> = Default::default();
    for ((s, &y), &p) in series.iter().zip(actual).zip(predicted) {
        let entry = sums.entry(s.as_str()).or_default();
        entry.0 += 1;
        entry.1 += (p - y).abs();
        entry.2 += y.abs();
    }
    let mut scores: Vec<SeriesScore> = sums
        .into_iter()
        .map(|(s, (rows, err, actual))| SeriesScore {
            series: s.to_string(),
            rows,
            actual,
            wape: ratio(err, actual),
        })
        .collect();
    scores.sort_by(|a, b| b.wape.total_cmp(&a.wape).then_with(|| a.series.cmp(&b.series)));
    scores
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The challenger became the champion.
    Promoted,
    /// The champion stayed: the challenger was not better.
    Kept,
    /// The challenger failed a guard, or there was no champion and it did
    /// not beat the baseline.
    Rejected,
    /// A person put an earlier version back.
    RolledBack,
}

impl DecisionKind {
    /// The name used in JSON and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Promoted => "promoted",
            DecisionKind::Kept => "kept",
            DecisionKind::Rejected => "rejected",
            DecisionKind::RolledBack => "rolled_back",
        }
    }
}

/// The promotion gate's verdict, with the reason in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub kind: DecisionKind,
    pub reason: String,
}

/// Decides whether the challenger replaces the champion (or, with no
/// champion, whether it is good enough to become the first): it must beat the
/// reference's WAPE by `min_improvement` and keep |bias| within `max_abs_bias`;
/// with `refuse_on_drift`, `drifted` (the features with a drift alert and
/// why) refuses it too. Against a champion, with `confidence` > 0, the
/// improvement must also be above its noise (`noise`, the bootstrap's
/// interval, whose lower bound must be > 0); with no estimate (too few
/// series) the fixed margin decides and the reason says so.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    challenger: &Metrics,
    champion: Option<&Metrics>,
    baseline: &Metrics,
    same_version: bool,
    drifted: Option<&str>,
    noise: Option<&NoiseEstimate>,
    gate: &PromotionSettings,
) -> Verdict {
    use DecisionKind::{Kept, Promoted, Rejected};
    let verdict = |kind, reason: String| Verdict { kind, reason };
    if same_version {
        return verdict(Kept, "the challenger is the champion (same SHA-256)".into());
    }
    // Without a champion there is nothing to keep: the challenger is rejected.
    let not_promoted = if champion.is_some() { Kept } else { Rejected };
    if let Some(drifted) = drifted.filter(|_| gate.refuse_on_drift) {
        return verdict(
            not_promoted,
            format!("the newest data drifted: {drifted} (promotion.refuse_on_drift)"),
        );
    }
    if challenger.bias.abs() > gate.max_abs_bias {
        return verdict(
            not_promoted,
            format!(
                "challenger bias {:+.4} is beyond the limit of {} (promotion.max_abs_bias)",
                challenger.bias, gate.max_abs_bias
            ),
        );
    }
    let (name, reference) = match champion {
        Some(m) => ("champion", m),
        None => ("seasonal-naive baseline", baseline),
    };
    let bar = reference.wape * (1.0 - gate.min_improvement);
    if challenger.wape < bar {
        let beats = format!(
            "challenger WAPE {:.4} beats the {name}'s {:.4} by {:.2}% (needed {:.2}%)",
            challenger.wape,
            reference.wape,
            100.0 * (1.0 - challenger.wape / reference.wape),
            100.0 * gate.min_improvement
        );
        if champion.is_none() || gate.confidence <= 0.0 {
            return verdict(Promoted, beats);
        }
        match noise {
            Some(n) if n.above_noise() => verdict(
                Promoted,
                format!(
                    "{beats}; improvement {:.2}% ({}) is above noise",
                    100.0 * n.improvement,
                    n.interval_text()
                ),
            ),
            Some(n) => verdict(
                Kept,
                format!(
                    "{beats}, but improvement {:.2}% ({}, {} resamples of {} series) is within noise: kept (promotion.confidence)",
                    100.0 * n.improvement,
                    n.interval_text(),
                    n.resamples,
                    n.blocks
                ),
            ),
            None => verdict(
                Promoted,
                format!(
                    "{beats}; no noise estimate (fewer than {} series), the fixed margin decided",
                    crate::noise::MIN_BLOCKS
                ),
            ),
        }
    } else {
        verdict(
            not_promoted,
            format!(
                "challenger WAPE {:.4} does not beat the {name}'s {:.4} by {:.2}% (needs below {:.4})",
                challenger.wape,
                reference.wape,
                100.0 * gate.min_improvement,
                bar
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        let m = metrics(&[10.0, 20.0, 0.0], &[12.0, 15.0, 0.0]);
        assert_eq!(m.rows, 3);
        assert!((m.wape - 7.0 / 30.0).abs() < 1e-12);
        assert!((m.mae - 7.0 / 3.0).abs() < 1e-12);
        assert!((m.rmse - (29.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((m.bias - (-3.0 / 30.0)).abs() < 1e-12);
        assert!((m.smape - (4.0 / 22.0 + 10.0 / 35.0) / 3.0).abs() < 1e-12);
    }

    fn with(wape: f64, bias: f64) -> Metrics {
        Metrics {
            rows: 1,
            wape,
            mae: 0.0,
            rmse: 0.0,
            smape: 0.0,
            bias,
        }
    }

    #[test]
    fn the_gate() {
        use DecisionKind::*;
        let gate = PromotionSettings {
            min_improvement: 0.01,
            max_abs_bias: 0.1,
            refuse_on_drift: false,
            confidence: 0.0,
            resamples: 1000,
        };
        let base = with(0.30, 0.0);
        assert_eq!(
            decide(&with(0.10, 0.0), None, &base, false, None, None, &gate).kind,
            Promoted
        );
        assert_eq!(
            decide(&with(0.31, 0.0), None, &base, false, None, None, &gate).kind,
            Rejected
        );
        assert_eq!(
            decide(
                &with(0.10, 0.0),
                Some(&with(0.1005, 0.0)),
                &base,
                false,
                None,
                None,
                &gate
            )
            .kind,
            Kept,
            "not 1% better"
        );
        assert_eq!(
            decide(
                &with(0.098, 0.0),
                Some(&with(0.1, 0.0)),
                &base,
                false,
                None,
                None,
                &gate
            )
            .kind,
            Promoted
        );
        let biased = decide(
            &with(0.05, 0.2),
            Some(&with(0.1, 0.0)),
            &base,
            false,
            None,
            None,
            &gate,
        );
        assert_eq!(biased.kind, Kept);
        assert!(biased.reason.contains("bias"), "{}", biased.reason);
        assert_eq!(
            decide(
                &with(0.05, 0.0),
                Some(&with(0.1, 0.0)),
                &base,
                true,
                None,
                None,
                &gate
            )
            .kind,
            Kept
        );
        let drifted = Some("Sales (day PSI 3.000 (alert 0.400))");
        let good = with(0.05, 0.0);
        assert_eq!(
            decide(&good, Some(&with(0.1, 0.0)), &base, false, drifted, None, &gate).kind,
            Promoted,
            "drift refuses nothing unless asked"
        );
        let refusing = PromotionSettings {
            refuse_on_drift: true,
            ..gate.clone()
        };
        let refused = decide(
            &good,
            Some(&with(0.1, 0.0)),
            &base,
            false,
            drifted,
            None,
            &refusing,
        );
        assert_eq!(refused.kind, Kept);
        assert!(
            refused.reason.contains("Sales") && refused.reason.contains("refuse_on_drift"),
            "{}",
            refused.reason
        );
        assert_eq!(
            decide(&good, None, &base, false, drifted, None, &refusing).kind,
            Rejected
        );
        assert_eq!(
            decide(&good, Some(&with(0.1, 0.0)), &base, false, None, None, &refusing).kind,
            Promoted,
            "no drift, nothing refused"
        );
    }

    #[test]
    fn the_noise_check_keeps_an_improvement_within_noise() {
        use DecisionKind::*;
        let fixed = PromotionSettings {
            confidence: 0.0,
            ..PromotionSettings::default()
        };
        let noisy = PromotionSettings {
            confidence: 0.9,
            ..fixed.clone()
        };
        let estimate = |lower: f64| NoiseEstimate {
            improvement: 0.008,
            confidence: 0.9,
            lower,
            upper: 0.019,
            resamples: 1000,
            resampled: "series".into(),
            blocks: 100,
            rows: 30000,
            seed: 1,
        };
        let (base, champion, challenger) = (with(0.3, 0.0), with(0.1, 0.0), with(0.0992, 0.0));
        let within = estimate(-0.003);
        let decide_with = |noise: Option<&NoiseEstimate>, gate: &PromotionSettings| {
            decide(&challenger, Some(&champion), &base, false, None, noise, gate)
        };
        // confidence 0: the fixed margin alone, whatever the estimate says.
        assert_eq!(decide_with(Some(&within), &fixed).kind, Promoted);
        assert_eq!(decide_with(None, &fixed).kind, Promoted);
        let kept = decide_with(Some(&within), &noisy);
        assert_eq!(kept.kind, Kept);
        assert!(
            kept.reason
                .contains("improvement 0.80% (90% interval -0.30% .. 1.90%")
                && kept.reason.contains("within noise: kept"),
            "{}",
            kept.reason
        );
        let above = decide_with(Some(&estimate(0.001)), &noisy);
        assert_eq!(above.kind, Promoted);
        assert!(above.reason.contains("above noise"), "{}", above.reason);
        let unmeasured = decide_with(None, &noisy);
        assert_eq!(unmeasured.kind, Promoted);
        assert!(
            unmeasured.reason.contains("no noise estimate"),
            "{}",
            unmeasured.reason
        );
        // The margin still comes first: above noise but not 0.5% better.
        let close = decide(
            &with(0.0997, 0.0),
            Some(&champion),
            &base,
            false,
            None,
            Some(&estimate(0.001)),
            &noisy,
        );
        assert_eq!(close.kind, Kept);
        // No champion: the baseline is beaten by the fixed margin only.
        assert_eq!(
            decide(&challenger, None, &base, false, None, Some(&within), &noisy).kind,
            Promoted
        );
    }

    #[test]
    fn bad_confidence_names_its_key() {
        for (confidence, resamples, key) in [
            (1.0, 1000, "promotion.confidence"),
            (-0.1, 1000, "promotion.confidence"),
            (f64::NAN, 1000, "promotion.confidence"),
            (0.9, 10, "promotion.resamples"),
        ] {
            let gate = PromotionSettings {
                confidence,
                resamples,
                ..PromotionSettings::default()
            };
            let e = gate.check().unwrap_err();
            assert_eq!(e.key, key, "{}", e.problem);
        }
        let off = PromotionSettings {
            confidence: 0.0,
            resamples: 0,
            ..PromotionSettings::default()
        };
        assert!(off.check().is_ok(), "off needs no resamples");
        assert!(PromotionSettings::default().check().is_ok());
    }

    #[test]
    fn worst_series_first() {
        let series = ["a", "b", "a", "b"].map(String::from);
        let scores = per_series(&series, &[10.0, 10.0, 10.0, 10.0], &[10.0, 15.0, 11.0, 5.0]);
        assert_eq!(scores[0].series, "b");
        assert!((scores[0].wape - 0.5).abs() < 1e-12);
        assert!((scores[1].wape - 0.05).abs() < 1e-12);
    }
}
