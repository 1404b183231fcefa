//! What people see of a run: the progress of long phases on stderr (quiet
//! lines in a CI log, bars on a terminal through a pseudo-terminal from
//! util-linux's `script`), stdout left clean, and the SVG charts beside the
//! run report (parsed as XML; their points checked against report.json;
//! report.md's links resolve; the live-accuracy chart once monitor scored).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Days;
use quick_xml::events::Event;

use crate::monitor::{CONFIG, date, write_csv};
use crate::util::{Cli, LINEAR, rossmann_config, rossmann_lake, s, tempdir};

const DAY: &str = "2015-07-31";

/// One element of an SVG: its name and attributes.
#[derive(Debug)]
struct Element {
    name: String,
    attributes: BTreeMap<String, String>,
}

/// Every element of `text`, which must be well-formed XML whose root is an
/// `svg` in the SVG namespace with a `<title>`.
fn parse_svg(text: &str, what: &str) -> Vec<Element> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut elements = Vec::new();
    let mut depth = 0usize;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("{what} is not well-formed XML: {e}\n{text}"));
        let start = match &event {
            Event::Start(e) => Some(e),
            Event::Empty(e) => Some(e),
            Event::End(_) => {
                depth -= 1;
                None
            }
            Event::Eof => break,
            _ => None,
        };
        if let Some(e) = start {
            if depth == 0 {
                assert!(elements.is_empty(), "{what}: more than one root element");
            }
            if matches!(event, Event::Start(_)) {
                depth += 1;
            }
            let attributes = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap_or_else(|err| panic!("{what}: a bad attribute: {err}"));
                    (
                        String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                        String::from_utf8_lossy(&a.value).into_owned(),
                    )
                })
                .collect();
            elements.push(Element {
                name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                attributes,
            });
        }
    }
    assert_eq!(depth, 0, "{what}: unclosed elements");
    let root = &elements[0];
    assert_eq!(root.name, "svg", "{what}");
    assert_eq!(
        root.attributes.get("xmlns").map(String::as_str),
        Some("http://www.w3.org/2000/svg"),
        "{what}"
    );
    assert_eq!(elements[1].name, "title", "{what}: the title comes first");
    for name in ["script", "image", "foreignObject", "link"] {
        assert!(elements.iter().all(|e| e.name != name), "{what} has a <{name}>");
    }
    assert!(
        !text.contains("@import") && !text.contains("url("),
        "{what} fetches something"
    );
    elements
}

/// The (x, y) pairs of the polylines of class `line CLASS`, run by run.
fn polylines(elements: &[Element], class: &str) -> Vec<Vec<(f64, f64)>> {
    elements
        .iter()
        .filter(|e| e.name == "polyline" && e.attributes["class"] == format!("line {class}"))
        .map(|e| {
            e.attributes["points"]
                .split(' ')
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// The files report.md links to (`![..](NAME)`), which must exist beside it.
fn linked_files(folder: &Path) -> Vec<PathBuf> {
    let md = std::fs::read_to_string(folder.join("report.md")).unwrap();
    let links: Vec<PathBuf> = md
        .split("](")
        .skip(1)
        .map(|rest| folder.join(&rest[..rest.find(')').unwrap()]))
        .collect();
    for link in &links {
        assert!(
            link.is_file(),
            "report.md links {} which is missing",
            link.display()
        );
    }
    links
}

/// The folder of the run report of `day` under a local registry.
fn report_folder(registry: &Path, day: &str) -> PathBuf {
    let model = std::fs::read_dir(registry)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("runs").join(day).is_dir())
        .unwrap_or_else(|| panic!("no report of {day} under {}", registry.display()));
    model.join("runs").join(day)
}

/// The phases' lines of a CI log, in order.
fn progress_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("progress: ")).collect()
}

#[test]
fn a_retrain_reports_progress_on_stderr_and_draws_its_charts() {
    let dir = tempdir();
    let root = dir.path();
    let config = rossmann_config(root, LINEAR);
    let registry = root.join("registry");
    let cli = Cli::new(&config, s(rossmann_lake())).registry(s(&registry));
    let out = cli
        .clone()
        .json()
        .run(root, &["retrain", "--date", DAY])
        .expect_code(0);
    // stdout is the JSON report alone.
    let report = out.json();
    assert!(!out.stdout.contains("progress"), "{}", out.stdout);
    // Not a terminal: one line as each phase starts and ends, in order.
    let lines = progress_lines(&out.stderr);
    let expected = [
        "progress: reading the window: started (",
        "progress: reading the window: done in ",
        "progress: building features: started",
        "progress: building features: done in ",
        "progress: measuring drift: started",
        "progress: measuring drift: done in ",
        "progress: fitting candidates: started (0/2)",
        "progress: fitting candidates: done in ",
        "progress: fitting the challenger: started",
        "progress: fitting the challenger: done in ",
        "progress: calibrating intervals: started",
        "progress: calibrating intervals: done in ",
        "progress: scoring on the holdout: started (0/3)",
        "progress: scoring on the holdout: done in ",
        "progress: writing the model and report: started",
        "progress: writing the model and report: done in ",
    ];
    let mut at = 0;
    for want in expected {
        let found = lines[at..]
            .iter()
            .position(|l| l.starts_with(want))
            .unwrap_or_else(|| panic!("no {want:?} after line {at} in:\n{}", lines.join("\n")));
        at += found + 1;
    }
    assert!(
        lines.iter().any(|l| l.ends_with(" s (2/2)")),
        "the fits end at 2/2:\n{}",
        lines.join("\n")
    );
    // The window's files count up to the number read.
    let files = report["window"]["partition_files"].as_u64().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("progress: reading the window: done in ")
                && l.ends_with(&format!(" s ({files}/{files})"))),
        "{}",
        lines.join("\n")
    );
    // -q: no progress at all; the same report on stdout.
    let quiet = cli
        .clone()
        .json()
        .run(root, &["-q", "retrain", "--date", DAY, "--dry-run"])
        .expect_code(0);
    assert!(progress_lines(&quiet.stderr).is_empty(), "{}", quiet.stderr);
    quiet.json();

    // The charts beside report.md, each linked from it.
    let folder = report_folder(&registry, DAY);
    let linked = linked_files(&folder);
    let names: Vec<String> = linked
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "forecast-1.svg",
            "forecast-2.svg",
            "forecast-3.svg",
            "wape-by-horizon.svg"
        ],
        "no scores yet: no live chart"
    );
    let svg = |name: &str| std::fs::read_to_string(folder.join(name)).unwrap();
    // WAPE by horizon: one point per horizon of the report's table, the
    // highest WAPE drawn highest (the smallest y).
    let horizon = parse_svg(&svg("wape-by-horizon.svg"), "wape-by-horizon.svg");
    let per_horizon: Vec<f64> = report["challenger"]["horizons"]["per_horizon"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["metrics"]["wape"].as_f64().unwrap())
        .collect();
    assert_eq!(per_horizon.len(), 14);
    let line = polylines(&horizon, "challenger").concat();
    assert_eq!(line.len(), per_horizon.len(), "one point per horizon");
    let order = |values: Vec<f64>| {
        let mut idx: Vec<usize> = (0..values.len()).collect();
        idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
        idx
    };
    let highest_wape = order(per_horizon.clone())[per_horizon.len() - 1];
    let smallest_y = order(line.iter().map(|p| p.1).collect())[0];
    assert!(
        (line[highest_wape].1 - line[smallest_y].1).abs() < 0.11,
        "the worst horizon is drawn highest"
    );
    assert!(line.windows(2).all(|w| w[0].0 < w[1].0), "horizons left to right");
    let champion = polylines(&horizon, "champion");
    assert_eq!(champion.is_empty(), report["champion"].is_null());
    // The forecast charts: each series' holdout days, actual and forecast,
    // with the interval band; the series are the report's own.
    let paths = report["series_paths"].as_array().unwrap();
    assert_eq!(paths.len(), 3);
    for (i, path) in paths.iter().enumerate() {
        let name = format!("forecast-{}.svg", i + 1);
        let text = svg(&name);
        let elements = parse_svg(&text, &name);
        let days = path["points"].as_array().unwrap().len();
        assert!(days >= 7, "{name}: {days} holdout days");
        assert_eq!(polylines(&elements, "actual").concat().len(), days, "{name}");
        assert_eq!(polylines(&elements, "forecast").concat().len(), days, "{name}");
        assert!(
            elements.iter().any(|e| e.name == "polygon"),
            "{name}: the interval"
        );
        assert!(text.contains(path["series"].as_str().unwrap()), "{name}");
        for label in ["sales", "day", "actual", "forecast"] {
            assert!(text.contains(&format!(">{label}<")), "{name}: no {label:?} label");
        }
    }
}

#[test]
fn the_live_chart_appears_once_monitor_has_scored_days() {
    let dir = tempdir();
    let root = dir.path();
    let config = root.join("salescast.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let lake = root.join("lake");
    let registry = root.join("registry");
    let cli = Cli::new(&config, s(&lake)).registry(s(&registry));
    let json = cli.clone().json();
    let d = date("2015-05-09");
    let history = root.join("history.csv");
    write_csv(&history, date("2015-01-01"), d);
    cli.run(root, &["ingest", "--input", s(&history)]).expect_code(0);
    json.run(root, &["retrain", "--date", "2015-05-09"])
        .expect_code(0);
    json.run(root, &["predict", "--date", "2015-05-09"])
        .expect_code(0);
    let folder = report_folder(&registry, "2015-05-09");
    assert!(!folder.join("live-accuracy.svg").exists());
    for k in 1..=3u64 {
        let target = d + Days::new(k);
        let csv = root.join(format!("day{k}.csv"));
        write_csv(&csv, target, target);
        cli.run(root, &["ingest", "--input", s(&csv)]).expect_code(0);
        cli.run(root, &["monitor", "--date", &target.to_string()])
            .expect_code(0);
    }
    let report = json
        .run(root, &["retrain", "--date", "2015-05-12"])
        .expect_code(0)
        .json();
    let folder = report_folder(&registry, "2015-05-12");
    let linked = linked_files(&folder);
    assert!(linked.contains(&folder.join("live-accuracy.svg")), "{linked:?}");
    let text = std::fs::read_to_string(folder.join("live-accuracy.svg")).unwrap();
    let elements = parse_svg(&text, "live-accuracy.svg");
    // Three target days scored: the pooled 1-14 line has a point per day,
    // as report.json's live days, whose pooled WAPE is the monitor's.
    let days = report["live_days"].as_array().unwrap();
    let scored: Vec<&str> = days.iter().map(|d| d["day"].as_str().unwrap()).collect();
    assert_eq!(scored, ["2015-05-10", "2015-05-11", "2015-05-12"], "{report:#}");
    let pooled = polylines(&elements, "live").concat();
    assert_eq!(pooled.len(), 3, "{text}");
    let last = days[2]["wape"].as_array().unwrap().last().unwrap();
    assert_eq!(last[0], "1-14 days ahead");
    let monitor = json
        .run(root, &["monitor", "--date", "2015-05-12"])
        .expect_code(0)
        .json();
    let of_day = monitor["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["day"] == "2015-05-12")
        .unwrap();
    let (chart, monitored) = (
        last[1].as_f64().unwrap(),
        of_day["metrics"]["wape"].as_f64().unwrap(),
    );
    assert!((chart - monitored).abs() < 1e-9, "{chart} vs {monitored}");
    for label in ["target day", "live WAPE", "1 day ahead", "1-14 days ahead"] {
        assert!(text.contains(&format!(">{label}<")), "no {label:?} label");
    }
}

/// Bars on a terminal: the binary under a pseudo-terminal (`script` from
/// util-linux) draws indicatif bars (`pos/len` on a redrawn line) and no
/// CI lines; stdout and stderr share the terminal there.
#[test]
fn a_terminal_gets_progress_bars() {
    let Ok(found) = std::process::Command::new("script").arg("--version").output() else {
        eprintln!("skipped: util-linux's `script` is not installed");
        return;
    };
    assert!(found.status.success());
    let dir = tempdir();
    let root = dir.path();
    let config = rossmann_config(root, LINEAR);
    let binary = env!("CARGO_BIN_EXE_salescast");
    let line = format!(
        "stty cols 120 rows 40; '{binary}' --config '{}' --lake '{}' check --date {DAY}",
        s(&config),
        s(rossmann_lake())
    );
    // The number of files the window reads, from a run off the terminal.
    let cli = Cli::new(&config, s(rossmann_lake())).json();
    let files = cli.run(root, &["check", "--date", DAY]).expect_code(0).json()["partition_files"]
        .as_u64()
        .unwrap();
    let out = std::process::Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(root)
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    let drawn = screen
        .split(['\r', '\n'])
        .any(|l| l.contains("reading the window") && l.contains(&format!("/{files}")) && l.contains('['));
    assert!(drawn, "no bar of the window's {files} files drawn:\n{screen:?}");
    assert!(screen.contains("reading the window done in "), "{screen:?}");
    assert!(screen.contains("building features done in "), "{screen:?}");
    assert!(
        !screen.contains("progress: "),
        "CI lines on a terminal:\n{screen:?}"
    );
}
