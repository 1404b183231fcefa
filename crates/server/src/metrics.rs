//! Prometheus metrics in the text exposition format, kept by hand (a few
//! counters and one histogram need no library): requests by route, method
//! and status, request latency per route, reloads and failed reloads, and
//! the loaded model (its hash as a label).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use salescast_core::pipeline::serving::{Snapshot, Source};

/// Latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    /// Cumulative counts are computed at render; these are per bucket, plus +Inf.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// What is counted of one route.
#[derive(Default)]
struct RouteStats {
    /// Requests by method and status.
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: Histogram,
}

#[derive(Default)]
pub struct Metrics {
    /// By route: one lock per request, and a route's name is allocated
    /// only the first time it is seen.
    routes: Mutex<BTreeMap<String, RouteStats>>,
    pub reloads: AtomicU64,
    pub failed_reloads: AtomicU64,
    /// Polls that could not reach the registry or the lake.
    pub failed_checks: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &'static str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        if !routes.contains_key(route) {
            routes.insert(route.to_string(), RouteStats::default());
        }
        let Some(stats) = routes.get_mut(route) else {
            return;
        };
        *stats.requests.entry((method, status)).or_default() += 1;
        let h = &mut stats.latency;
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        h.counts[bucket] += 1;
        h.sum += seconds;
        h.count += 1;
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self, snapshot: Option<&Snapshot>) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP salescast_http_requests_total HTTP requests answered, by route, method and status.\n",
        );
        out.push_str("# TYPE salescast_http_requests_total counter\n");
        let Ok(routes) = self.routes.lock() else {
            return out;
        };
        for (route, stats) in routes.iter() {
            for ((method, status), n) in &stats.requests {
                let _ = writeln!(
                    out,
                    "salescast_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP salescast_http_request_duration_seconds Time to answer a request, by route.\n");
        out.push_str("# TYPE salescast_http_request_duration_seconds histogram\n");
        {
            for (route, h) in routes.iter().map(|(r, s)| (r, &s.latency)) {
                let route = escape(route);
                let mut cumulative = 0;
                for (i, le) in BUCKETS.iter().enumerate() {
                    cumulative += h.counts[i];
                    let _ = writeln!(
                        out,
                        "salescast_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "salescast_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "salescast_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "salescast_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        for (name, help, value) in [
            (
                "salescast_reloads_total",
                "Champion snapshots loaded and swapped in (the first load included).",
                &self.reloads,
            ),
            (
                "salescast_reload_failures_total",
                "Snapshots refused (failed to load, verify or warm up); the previous one kept serving.",
                &self.failed_reloads,
            ),
            (
                "salescast_check_failures_total",
                "Polls of the champion that the store did not answer (retried at the next poll).",
                &self.failed_checks,
            ),
        ] {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP salescast_model_info The loaded champion (1), by hash, data day and source.\n");
        out.push_str("# TYPE salescast_model_info gauge\n");
        if let Some(s) = snapshot {
            let source = match s.source {
                Source::Stored => "stored",
                Source::Computed => "computed",
            };
            let _ = writeln!(
                out,
                "salescast_model_info{{model_sha256=\"{}\",data_day=\"{}\",source=\"{source}\"}} 1",
                escape(s.version()),
                s.data_day
            );
            let _ = write!(
                out,
                "# HELP salescast_snapshot_load_seconds Time the loaded snapshot took to load.\n\
                 # TYPE salescast_snapshot_load_seconds gauge\nsalescast_snapshot_load_seconds {}\n",
                s.load_seconds
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
