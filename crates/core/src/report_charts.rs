//! The run report's charts: the figures they plot (a few series' one-day-ahead
//! forecasts and intervals against actuals on the holdout, live WAPE per
//! target day from the scores table) gathered while retraining, and the SVG
//! files drawn from the report (with [`crate::charts`], the dashboard's own
//! drawing code) next to `report.md`, which links them by relative name.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::charts::{Band, Chart, Horizon, Line};
use crate::forecast::intervals::Calibration;
use crate::forecast::origins::HorizonScores;
use crate::forecast::recursive::History;
use crate::ingest::date_from_days;
use crate::lake::Lake;
use crate::live::window_metrics;
use crate::scores::{ScoresError, read_scores};

/// How many series the report draws (the largest on the holdout).
pub const CHART_SERIES: usize = 3;
/// How many target days the live-accuracy chart reaches back.
pub const LIVE_CHART_DAYS: u32 = 60;

/// One series' holdout days: actual, one-day-ahead forecast, interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPath {
    pub series: String,
    pub points: Vec<PathPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathPoint {
    pub day: NaiveDate,
    pub actual: f64,
    pub forecast: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// The `CHART_SERIES` series with the most holdout sales, day by day:
/// `rows` are the holdout rows, `predicted` the one-day-ahead forecast of
/// each, the interval from `calibration` (horizon 1).
pub fn series_paths(
    history: &History,
    rows: &[usize],
    target: &[f64],
    predicted: &[f64],
    calibration: Option<&Calibration>,
) -> Vec<SeriesPath> {
    let mut totals: std::collections::BTreeMap<u32, f64> = Default::default();
    for &row in rows {
        *totals.entry(history.of_row(row).0).or_default() += target[row];
    }
    let mut largest: Vec<(u32, f64)> = totals.into_iter().collect();
    largest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    largest
        .into_iter()
        .take(CHART_SERIES)
        .map(|(series, _)| {
            let mut points: Vec<PathPoint> = rows
                .iter()
                .zip(predicted)
                .filter(|(row, _)| history.of_row(**row).0 == series)
                .filter_map(|(&row, &forecast)| {
                    let bounds = calibration.map(|c| c.bounds(1, forecast));
                    Some(PathPoint {
                        day: date_from_days(history.of_row(row).1)?,
                        actual: target[row],
                        forecast,
                        lower: bounds.map(|b| b.0),
                        upper: bounds.map(|b| b.1),
                    })
                })
                .collect();
            points.sort_by_key(|p| p.day);
            SeriesPath {
                series: history.name(series).to_string(),
                points,
            }
        })
        .collect()
}

/// Live WAPE of one target day: pooled over its open rows per bucket of
/// horizons (`live::live_ranges`), `None` for a bucket without rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveDay {
    pub day: NaiveDate,
    /// (bucket name, WAPE), in `live::live_ranges` order (the last pools 1-H).
    pub wape: Vec<(String, Option<f64>)>,
}

/// The live WAPE of each scored target day of the [`LIVE_CHART_DAYS`]
/// ending `through`.
pub fn live_days(
    lake: &Lake,
    model: &str,
    series_keys: &[String],
    horizon: u32,
    through: NaiveDate,
) -> Result<Vec<LiveDay>, ScoresError> {
    let first = through
        .checked_sub_days(Days::new(u64::from(LIVE_CHART_DAYS - 1)))
        .unwrap_or(through);
    let rows = read_scores(lake, model, series_keys, (first, through))?;
    let mut days: Vec<NaiveDate> = rows.iter().map(|r| r.target_date).collect();
    days.sort();
    days.dedup();
    Ok(days
        .into_iter()
        .map(|day| LiveDay {
            day,
            wape: window_metrics(&rows, horizon, day, 1)
                .buckets
                .iter()
                .map(|b| {
                    let wape = (b.metrics.rows > 0 && b.metrics.wape.is_finite()).then_some(b.metrics.wape);
                    (bucket_label(b.first, b.last), wape)
                })
                .collect(),
        })
        .collect())
}

fn bucket_label(first: u32, last: u32) -> String {
    if first == last {
        format!("{first} day ahead")
    } else {
        format!("{first}-{last} days ahead")
    }
}

/// One SVG file of a report: its name (relative to `report.md`), title and text.
#[derive(Debug, Clone)]
pub struct ChartFile {
    pub name: String,
    pub title: String,
    pub svg: String,
}

/// What a run report's charts are drawn from.
pub struct ChartInputs<'a> {
    pub run_date: NaiveDate,
    pub series_paths: &'a [SeriesPath],
    pub calibration: Option<&'a Calibration>,
    pub challenger: &'a HorizonScores,
    pub champion: Option<&'a HorizonScores>,
    pub live_days: &'a [LiveDay],
}

/// The report's charts: a forecast chart per drawn series, WAPE by horizon,
/// and live WAPE per target day when the scores table had any.
pub fn report_charts(report: &ChartInputs) -> Vec<ChartFile> {
    let mut files = Vec::new();
    let interval = report
        .calibration
        .map(|c| format!("{:.0}% interval", c.interval * 100.0));
    for (i, path) in report.series_paths.iter().enumerate() {
        let title = format!(
            "Series {}: one-day-ahead forecast of the challenger against actuals, holdout",
            path.series
        );
        let band: Vec<(NaiveDate, f64, f64)> = path
            .points
            .iter()
            .filter_map(|p| Some((p.day, p.lower?, p.upper?)))
            .collect();
        let chart = Chart {
            title: &title,
            lines: vec![
                Line {
                    name: "actual",
                    class: "actual",
                    points: path.points.iter().map(|p| (p.day, Some(p.actual))).collect(),
                },
                Line {
                    name: "forecast",
                    class: "forecast",
                    points: path.points.iter().map(|p| (p.day, Some(p.forecast))).collect(),
                },
            ],
            band: interval
                .as_deref()
                .filter(|_| !band.is_empty())
                .map(|name| Band { name, points: band }),
            marker: None,
            percent: false,
        };
        files.push(ChartFile {
            name: format!("forecast-{}.svg", i + 1),
            svg: chart.standalone("day", "sales"),
            title,
        });
    }
    let title = "Holdout WAPE by horizon (rolling origins)".to_string();
    let by_horizon = |h: &HorizonScores| -> Vec<(Horizon, Option<f64>)> {
        h.per_horizon
            .iter()
            .map(|m| (Horizon(m.horizon), Some(m.metrics.wape)))
            .collect()
    };
    let mut lines = vec![Line {
        name: "challenger",
        class: "challenger",
        points: by_horizon(report.challenger),
    }];
    if let Some(champion) = report.champion {
        lines.push(Line {
            name: "champion",
            class: "champion",
            points: by_horizon(champion),
        });
    }
    let chart = Chart {
        title: &title,
        lines,
        band: None,
        marker: None,
        percent: true,
    };
    files.push(ChartFile {
        name: "wape-by-horizon.svg".into(),
        svg: chart.standalone("days ahead of the origin", "WAPE"),
        title,
    });
    if !report.live_days.is_empty() {
        let title = format!(
            "Live WAPE per target day, up to {} (scores table)",
            report.run_date
        );
        let names: Vec<String> = report.live_days[0].wape.iter().map(|(n, _)| n.clone()).collect();
        let count = names.len();
        let lines = names
            .iter()
            .enumerate()
            .map(|(i, name)| Line {
                name,
                class: live_class(i, count),
                points: report
                    .live_days
                    .iter()
                    .map(|d| (d.day, d.wape.get(i).and_then(|w| w.1)))
                    .collect(),
            })
            .collect();
        let chart = Chart {
            title: &title,
            lines,
            band: None,
            marker: None,
            percent: true,
        };
        files.push(ChartFile {
            name: "live-accuracy.svg".into(),
            svg: chart.standalone("target day", "live WAPE"),
            title,
        });
    }
    files
}

/// The pooled bucket (the last) is the live line; the others take the bucket colours.
fn live_class(i: usize, count: usize) -> &'static str {
    match i {
        _ if i + 1 == count => "live",
        0 => "bucket1",
        1 => "bucket2",
        _ => "bucket3",
    }
}

/// The report's chart section: each file as an image, by relative link.
pub fn charts_markdown(files: &[ChartFile]) -> String {
    let mut md = "## Charts\n\n".to_string();
    for file in files {
        md += &format!("![{}]({})\n\n", file.title, file.name);
    }
    md
}
