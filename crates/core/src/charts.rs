//! Charts as SVG text, drawn by one code for the dashboard (inline in its
//! pages, styled by its stylesheet) and for the run report (standalone
//! files with their own style, axis labels and point markers): no script,
//! no chart library, nothing fetched. A chart is lines over points on an
//! ordered x axis (days, or horizons), an optional shaded band (a forecast
//! interval) and an optional marker (the data day). Every number written is
//! finite; labels are escaped.

use std::fmt::Write as _;

use chrono::NaiveDate;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 40.0;

/// The style of a standalone chart: the dashboard's colours, written into
/// the file so it needs nothing else.
const STYLE: &str = "text{font-family:sans-serif}.grid{stroke:#d9dee7;stroke-width:1}\
.tick{fill:#5b6577;font-size:11px}.axis{fill:#1d2430;font-size:12px}.title{fill:#1d2430;font-size:13px;font-weight:600}\
.line{fill:none;stroke-width:2}.actual{stroke:#243b53}.forecast{stroke:#1f6feb;stroke-dasharray:5 3}\
.challenger{stroke:#c2410c}.champion{stroke:#1f6feb}.live{stroke:#7c3aed}.bucket1{stroke:#059669}\
.bucket2{stroke:#d97706}.bucket3{stroke:#db2777}.holdout{stroke:#5b6577;stroke-dasharray:2 3}\
.band{fill:rgba(31,111,235,.16);stroke:none}.legend rect{stroke:none}.legend rect.band{fill:rgba(31,111,235,.35)}\
.marker{stroke:#5b6577;stroke-dasharray:2 3}";

/// The colours of the legend swatches and point markers (fill, not stroke).
const FILLS: [(&str, &str); 9] = [
    ("actual", "#243b53"),
    ("forecast", "#1f6feb"),
    ("challenger", "#c2410c"),
    ("champion", "#1f6feb"),
    ("live", "#7c3aed"),
    ("bucket1", "#059669"),
    ("bucket2", "#d97706"),
    ("bucket3", "#db2777"),
    ("holdout", "#5b6577"),
];

/// A position on the x axis: a day, or a horizon.
pub trait XValue: Copy + Ord {
    /// Its position, in whole steps (days, horizons).
    fn position(self) -> i64;
    /// The value at a position.
    fn at(position: i64) -> Option<Self>;
    /// Its tick label.
    fn label(self) -> String;
}

impl XValue for NaiveDate {
    fn position(self) -> i64 {
        self.to_epoch_days().into()
    }
    fn at(position: i64) -> Option<Self> {
        NaiveDate::from_epoch_days(i32::try_from(position).ok()?)
    }
    fn label(self) -> String {
        self.format("%b %-d").to_string()
    }
}

/// Days ahead of a forecast's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Horizon(pub u32);

impl XValue for Horizon {
    fn position(self) -> i64 {
        self.0.into()
    }
    fn at(position: i64) -> Option<Self> {
        u32::try_from(position).ok().map(Horizon)
    }
    fn label(self) -> String {
        self.0.to_string()
    }
}

/// One line: its points (a `None` value breaks the line), CSS class and name.
pub struct Line<'a, X = NaiveDate> {
    pub name: &'a str,
    pub class: &'a str,
    pub points: Vec<(X, Option<f64>)>,
}

/// A shaded band between a lower and an upper value per x.
pub struct Band<'a, X = NaiveDate> {
    pub name: &'a str,
    pub points: Vec<(X, f64, f64)>,
}

pub struct Chart<'a, X = NaiveDate> {
    pub title: &'a str,
    pub lines: Vec<Line<'a, X>>,
    pub band: Option<Band<'a, X>>,
    /// A vertical rule with its label (the data day).
    pub marker: Option<(X, &'a str)>,
    /// Values shown as percentages (WAPE) rather than amounts.
    pub percent: bool,
}

/// What a standalone chart adds to the inline one.
struct Standalone<'a> {
    x_label: &'a str,
    y_label: &'a str,
}

impl<X: XValue> Chart<'_, X> {
    /// The SVG text to put inline in a page styled by the dashboard's
    /// stylesheet, or a short note when there is nothing to draw.
    pub fn svg(&self) -> String {
        self.draw(None)
    }

    /// A whole SVG file (an XML declaration, the SVG namespace, its own
    /// style, a title, axis labels, a legend and a dot on every point):
    /// what a run report links to. Without data it says so in the picture.
    pub fn standalone(&self, x_label: &str, y_label: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
            self.draw(Some(&Standalone { x_label, y_label }))
        )
    }

    fn draw(&self, standalone: Option<&Standalone>) -> String {
        let days = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(self.band.iter().flat_map(|b| b.points.iter().map(|p| p.0)));
        let (Some(first), Some(last)) = (days.clone().min(), days.max()) else {
            return match standalone {
                None => format!("<p class=\"empty\">{}: no data yet.</p>", escape(self.title)),
                Some(_) => format!(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} 60\" width=\"{WIDTH}\" height=\"60\">\
                     <title>{0}</title><style>{STYLE}</style><text class=\"axis\" x=\"8\" y=\"30\">{0}: no data yet.</text></svg>",
                    escape(self.title)
                ),
            };
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
        let span = (last.position() - first.position()).max(1) as f64;
        let x = |d: X| LEFT + (d.position() - first.position()) as f64 / span * (WIDTH - LEFT - RIGHT);
        let y = |v: f64| TOP + (1.0 - (v / top).clamp(0.0, 1.0)) * (HEIGHT - TOP - BOTTOM);
        let mut out = String::new();
        let head = if standalone.is_some() {
            format!("xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" ")
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<svg {head}class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">\
             <title>{}</title>",
            escape(self.title),
            escape(self.title)
        );
        if let Some(labels) = standalone {
            let _ = write!(
                out,
                "<style>{STYLE}</style>\
                 <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
                 <text class=\"axis\" transform=\"rotate(-90)\" x=\"{:.1}\" y=\"14\" text-anchor=\"middle\">{}</text>",
                (LEFT + WIDTH - RIGHT) / 2.0,
                HEIGHT - 6.0,
                escape(labels.x_label),
                -(TOP + HEIGHT - BOTTOM) / 2.0,
                escape(labels.y_label),
            );
        }
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
                escape(&day.label())
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
                if standalone.is_some() && run.len() <= MAX_DOTS {
                    for (d, v) in &run {
                        let _ = write!(
                            out,
                            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                            x(*d),
                            y(*v),
                            fill(line.class)
                        );
                    }
                }
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
            // A standalone file colours its swatches itself.
            let colour = match standalone {
                Some(_) if class != "band" => format!(" style=\"fill:{}\"", fill(&class[5..])),
                _ => String::new(),
            };
            let _ = write!(
                out,
                "<g class=\"legend\"><rect class=\"{}\"{colour} x=\"{at:.1}\" y=\"{:.1}\" width=\"14\" height=\"4\"/>\
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

/// A run of at most this many points gets a dot on each (standalone only).
const MAX_DOTS: usize = 90;

/// The fill colour of a line's class (its dots and legend swatch).
fn fill(class: &str) -> &'static str {
    FILLS
        .iter()
        .find(|(c, _)| *c == class)
        .map_or("#1d2430", |(_, colour)| colour)
}

/// The unbroken runs of finite values of a line (a single point is a run).
fn runs<X: XValue>(points: &[(X, Option<f64>)]) -> Vec<Vec<(X, f64)>> {
    let mut out: Vec<Vec<(X, f64)>> = vec![Vec::new()];
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

/// Up to seven evenly spaced labels.
fn ticks<X: XValue>(first: X, last: X) -> Vec<X> {
    let span = (last.position() - first.position()).max(0);
    let step = (span / 6).max(1);
    (0..=span)
        .step_by(usize::try_from(step).unwrap_or(1))
        .filter_map(|d| X::at(first.position() + d))
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
        let chart = Chart::<NaiveDate> {
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

    #[test]
    fn a_standalone_chart_carries_its_style_axes_and_dots() {
        let chart = Chart {
            title: "WAPE by horizon",
            lines: vec![Line {
                name: "challenger",
                class: "challenger",
                points: (1..=14)
                    .map(|h| (Horizon(h), Some(0.1 + f64::from(h) / 100.0)))
                    .collect(),
            }],
            band: None,
            marker: None,
            percent: true,
        };
        let svg = chart.standalone("days ahead", "WAPE <%>");
        assert!(svg.starts_with("<?xml") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("<style>") && svg.contains("<title>WAPE by horizon</title>"));
        assert!(svg.contains(">days ahead<") && svg.contains(">WAPE &lt;%&gt;<"));
        assert_eq!(svg.matches("<circle").count(), 14, "a dot per horizon");
        assert!(svg.contains(">1<") && svg.contains(">13<"), "horizon ticks");
        assert!(
            svg.contains("style=\"fill:#c2410c\""),
            "the swatch coloured in the file"
        );
        assert_eq!(
            chart.svg().matches("<circle").count(),
            0,
            "inline: as the dashboard draws"
        );
        let empty = Chart::<Horizon> {
            lines: vec![],
            ..chart
        };
        assert!(empty.standalone("x", "y").contains("no data yet"));
    }
}
