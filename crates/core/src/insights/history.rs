//! The model's history for the dashboard's model page: the champion and its
//! manifest, its metrics per horizon and worst series (from the newest run
//! report that scored it), the decision log newest first, and the pooled
//! holdout WAPE of champion and challenger run by run.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::evaluate::DecisionKind;
use crate::forecast::origins::HorizonScores;
use crate::registry::{Champion, Decision, Manifest, Registry, RegistryError};
use crate::report::SeriesRow;

/// Reports read back looking for the champion's scores, newest first.
const REPORTS_SEARCHED: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct ModelHistory {
    pub model: String,
    pub champion: Option<Champion>,
    pub manifest: Option<Manifest>,
    /// The champion's scores in the newest run that evaluated it.
    pub scores: Option<ChampionScores>,
    /// The whole decision log, newest first.
    pub decisions: Vec<Decision>,
    /// One point per retrain decision, oldest first.
    pub wape: Vec<WapePoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChampionScores {
    pub run_date: NaiveDate,
    pub horizons: HorizonScores,
    /// The series it forecast worst on that run's holdout: (series, actual, WAPE).
    pub worst_series: Vec<(String, f64, f64)>,
}

/// The pooled holdout WAPE of a run's challenger and of the champion it
/// was compared with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WapePoint {
    pub run_date: NaiveDate,
    pub sequence: u64,
    pub kind: DecisionKind,
    pub challenger: Option<f64>,
    pub champion: Option<f64>,
}

/// The fields of a run report the page reads.
#[derive(Deserialize)]
struct ReportView {
    challenger: Side,
    champion: Option<Side>,
    #[serde(default)]
    worst_series: Vec<SeriesRow>,
}

#[derive(Deserialize)]
struct Side {
    version: String,
    horizons: HorizonScores,
}

impl ModelHistory {
    pub fn load(registry: &Registry) -> Result<Self, RegistryError> {
        let champion = registry.champion()?.map(|(c, _)| c);
        let manifest = match &champion {
            Some(c) => Some(registry.manifest(&c.version)?),
            None => None,
        };
        let mut decisions = registry.decisions()?;
        decisions.reverse();
        let wape = decisions
            .iter()
            .rev()
            .filter_map(|d| {
                Some(WapePoint {
                    run_date: d.what.run_date?,
                    sequence: d.sequence,
                    kind: d.what.kind,
                    challenger: d
                        .what
                        .challenger_metrics
                        .as_ref()
                        .map(|m| m.wape)
                        .filter(|w| w.is_finite()),
                    champion: d
                        .what
                        .champion_metrics
                        .as_ref()
                        .map(|m| m.wape)
                        .filter(|w| w.is_finite()),
                })
            })
            .collect();
        let scores = match &champion {
            Some(c) => scores_of(registry, &decisions, &c.version)?,
            None => None,
        };
        Ok(Self {
            model: registry.model().to_string(),
            champion,
            manifest,
            scores,
            decisions,
            wape,
        })
    }
}

/// The champion's scores from the newest report of a run that evaluated it
/// (as challenger or as champion).
fn scores_of(
    registry: &Registry,
    newest_first: &[Decision],
    version: &str,
) -> Result<Option<ChampionScores>, RegistryError> {
    let involved = newest_first.iter().filter(|d| {
        d.what.challenger.as_deref() == Some(version) || d.what.champion_before.as_deref() == Some(version)
    });
    let mut dates: Vec<NaiveDate> = involved.filter_map(|d| d.what.run_date).collect();
    dates.dedup();
    for run_date in dates.into_iter().take(REPORTS_SEARCHED) {
        let Some(report) = registry.report::<ReportView>(run_date)? else {
            continue;
        };
        let as_challenger = report.challenger.version == version;
        let side = if as_challenger {
            Some(report.challenger)
        } else {
            report.champion.filter(|c| c.version == version)
        };
        let Some(side) = side else { continue };
        let worst_series = report
            .worst_series
            .into_iter()
            .filter_map(|row| {
                let wape = if as_challenger {
                    Some(row.challenger_wape)
                } else {
                    row.champion_wape
                };
                Some((row.series, row.actual, wape?))
            })
            .collect();
        return Ok(Some(ChampionScores {
            run_date,
            horizons: side.horizons,
            worst_series,
        }));
    }
    Ok(None)
}
