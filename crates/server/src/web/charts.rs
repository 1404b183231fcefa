//! The dashboard's charts: inline SVG drawn on the server (no script, no
//! chart library, nothing fetched), as text the templates insert. A chart is
//! lines over dated points, an optional shaded band (a forecast interval)
//! and an optional marker day (the data day). Every number written is
//! finite; labels are escaped.

use std::fmt::Write as _;

use chrono::NaiveDate;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 40.0;

/// One line: its points (a `None` value breaks the line), CSS class and name.
pub struct Line<'a> {
    pub name: &'a str,
    pub class: &'a str,
    pub points: Vec<(NaiveDate, Option<f64>)>,
}

/// A shaded band between a lower and an upper value per day.
pub struct Band<'a> {
    pub name: &'a str,
    pub points: Vec<(NaiveDate, f64, f64)>,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub lines: Vec<Line<'a>>,
    pub band: Option<Band<'a>>,
    /// A vertical rule with its label (the data day).
    pub marker: Option<(NaiveDate, &'a str)>,
    /// Values shown as percentages (WAPE) rather than amounts.
    pub percent: bool,
}

impl Chart<'_> {
    /// The SVG text, or a short note when there is nothing to draw.
    pub fn svg(&self) -> String {
        let days = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(self.band.iter().flat_map(|b| b.points.iter().map(|p| p.0)));
        let (Some(first), Some(last)) = (days.clone().min(), days.max()) else {
            return format!("<p class=\"empty\">{}: no data yet.</p>", escape(self.title));
        };
        let values = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
            .chain(
                self.band
                    .iter()
                    .flat_map(|b| b.points.iter().flat_map(|p| [p.1, p.2])),
            )
            .filter(|v| v.is_finite());
        let top = values.fold(0.0_f64, f64::max);
        let top = nice_ceiling(if top > 0.0 { top } else { 1.0 });
        let span = (last - first).num_days().max(1) as f64;
        let x = |d: NaiveDate| LEFT + (d - first).num_days() as f64 / span * (WIDTH - LEFT - RIGHT);
        let y = |v: f64| TOP + (1.0 - (v / top).clamp(0.0, 1.0)) * (HEIGHT - TOP - BOTTOM);
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">\
             <title>{}</title>",
            escape(self.title),
            escape(self.title)
        );
        for i in 0..=4 {
            let v = top * f64::from(i) / 4.0;
            let _ = write!(
                out,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                WIDTH - RIGHT,
                y(v),
                y(v),
                LEFT - 6.0,
                y(v) + 4.0,
                if self.percent {
                    format!("{:.0}%", v * 100.0)
                } else {
                    compact(v)
                }
            );
        }
        let labels = ticks(first, last);
        let count = labels.len();
        for (i, day) in labels.into_iter().enumerate() {
            let anchor = match i {
                0 => "start",
                i if i + 1 == count && x(day) > WIDTH - RIGHT - 30.0 => "end",
                _ => "middle",
            };
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                x(day),
                HEIGHT - BOTTOM + 18.0,
                day.format("%b %-d")
            );
        }
        if let Some(band) = &self.band
            && !band.points.is_empty()
        {
            let upper = band.points.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(p.2)));
            let lower = band
                .points
                .iter()
                .rev()
                .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)));
            let points: Vec<String> = upper.chain(lower).collect();
            let _ = write!(
                out,
                "<polygon class=\"band\" points=\"{}\"><title>{}</title></polygon>",
                points.join(" "),
                escape(band.name)
            );
        }
        if let Some((day, label)) = self.marker {
            let _ = write!(
                out,
                "<line class=\"marker\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1:.1}\"/>\
                 <text class=\"tick\" x=\"{2:.1}\" y=\"{3:.1}\">{4}</text>",
                x(day),
                HEIGHT - BOTTOM,
                x(day) + 4.0,
                TOP + 10.0,
                escape(label)
            );
        }
        for line in &self.lines {
            for run in runs(&line.points) {
                let points: Vec<String> = run
                    .iter()
                    .map(|(d, v)| format!("{:.1},{:.1}", x(*d), y(*v)))
                    .collect();
                let _ = write!(
                    out,
                    "<polyline class=\"line {}\" points=\"{}\"><title>{}</title></polyline>",
                    escape(line.class),
                    points.join(" "),
                    escape(line.name)
                );
            }
        }
        // The legend: one swatch per line, then the band's.
        let mut at = LEFT + 8.0;
        let named = self
            .lines
            .iter()
            .filter(|l| l.points.iter().any(|p| p.1.is_some()));
        for (name, class) in named
            .map(|l| (l.name, format!("line {}", l.class)))
            .chain(self.band.iter().map(|b| (b.name, "band".to_string())))
        {
            let _ = write!(
                out,
                "<g class=\"legend\"><rect class=\"{}\" x=\"{at:.1}\" y=\"{:.1}\" width=\"14\" height=\"4\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
                escape(&class),
                TOP - 6.0,
                at + 18.0,
                TOP - 1.0,
                escape(name)
            );
            at += 30.0 + 7.0 * name.chars().count() as f64;
        }
        out.push_str("</svg>");
        out
    }
}

/// The unbroken runs of finite values of a line (a single point is a run).
fn runs(points: &[(NaiveDate, Option<f64>)]) -> Vec<Vec<(NaiveDate, f64)>> {
    let mut out: Vec<Vec<(NaiveDate, f64)>> = vec![Vec::new()];
    for (day, value) in points {
        match value.filter(|v| v.is_finite()) {
            Some(v) => {
                if let Some(run) = out.last_mut() {
                    run.push((*day, v));
                }
            }
            None if out.last().is_some_and(|run| !run.is_empty()) => out.push(Vec::new()),
            None => {}
        }
    }
    out.retain(|run| !run.is_empty());
    out
}

/// Up to seven evenly spaced day labels.
fn ticks(first: NaiveDate, last: NaiveDate) -> Vec<NaiveDate> {
    let span = (last - first).num_days().max(0);
    let step = (span / 6).max(1);
    (0..=span)
        .step_by(usize::try_from(step).unwrap_or(1))
        .filter_map(|d| first.checked_add_days(chrono::Days::new(d as u64)))
        .collect()
}

/// 1, 2 or 5 times a power of ten, at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|c| *c >= v)
        .unwrap_or(v)
}

/// 12.3k, 4.5M: short axis labels.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Text safe inside SVG/HTML text and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    #[test]
    fn gaps_break_a_line_and_labels_are_escaped() {
        let chart = Chart {
            title: "Store <b>",
            lines: vec![Line {
                name: "sales & more",
                class: "actual",
                points: vec![
                    (day(1), Some(5.0)),
                    (day(2), None),
                    (day(3), Some(7.0)),
                    (day(4), Some(9.0)),
                ],
            }],
            band: Some(Band {
                name: "80% interval",
                points: vec![(day(4), 8.0, 10.0)],
            }),
            marker: Some((day(3), "data day")),
            percent: false,
        };
        let svg = chart.svg();
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("Store &lt;b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains("sales &amp; more"));
        assert!(svg.contains("class=\"band\"") && svg.contains("class=\"marker\""));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn an_empty_chart_says_so() {
        let chart = Chart {
            title: "WAPE",
            lines: vec![],
            band: None,
            marker: None,
            percent: true,
        };
        assert!(chart.svg().contains("no data yet"));
        assert_eq!(nice_ceiling(730.0), 1000.0);
        assert_eq!(nice_ceiling(0.18), 0.2);
        assert_eq!(compact(12_345.0), "12.3k");
    }
}
