//! `salescast serve` through the real binary on both backends: it serves the
//! champion's stored forecasts with intervals and its hash, follows the
//! champion through a promotion and a rollback (never labelling one model's
//! forecasts with another's hash), refuses a corrupt version while the old
//! one keeps answering, answers bad requests with JSON 400/404/413, computes
//! on-demand forecasts under a caller's plan, counts all of it in /metrics,
//! and stops cleanly on SIGTERM.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::retrain::{Backend, Place};
use crate::server_util::Server;
use crate::util::{LINEAR, QUICK, copy_tree, on_every_backend, python, rossmann_lake, s, s3_endpoint};

pub const ADMIN_PASSWORD: &str = "the admin's long password";

/// Adds the admin `root` (password [`ADMIN_PASSWORD`]) with `salescast users add`.
pub fn add_admin(place: &Place) {
    crate::users::users(
        place,
        &["add", "root", "--role", "admin", "--password-stdin"],
        Some(&format!("{ADMIN_PASSWORD}\n")),
    )
    .expect_code(0);
}

/// How long a switch may take: the poll interval plus a snapshot load (a
/// debug build reading 400 days from the S3 test server, forecasting 100
/// stores), with room for a busy CI machine.
const SWITCH: Duration = Duration::from_secs(120);

on_every_backend!(serve_follows_the_champion_and_refuses_a_corrupt_version);

fn serve_follows_the_champion_and_refuses_a_corrupt_version(backend: Backend) {
    let mut place = Place::new(backend);
    if matches!(backend, Backend::Local) {
        // predict writes into the lake: a private copy of the shared one.
        let lake = place.dir.path().join("lake");
        copy_tree(rossmann_lake(), &lake);
        place.lake = s(&lake).to_string();
    }
    // Its own model name: its forecasts never meet another test's in the shared S3 lake.
    let serving = "[training]\nmodel_name = \"serving\"\n";
    // Checks every 0.2 s, and lists the partitions every second (the days
    // here are in 2015, so the head of yesterday's partition never finds one).
    let poll = "[serve]\npoll_seconds = 0.2\nrescan_seconds = 1\n";
    let linear = place.config(&format!("{}{poll}", LINEAR.replace("[training]\n", serving)));
    let quick = place.config(&format!(
        "{}{poll}",
        QUICK.replace("[training.gbdt]", &format!("{serving}[training.gbdt]"))
    ));
    let cli = |config: &Path| place.cli(config);
    let dir = place.dir.path();

    let v1 = cli(&linear)
        .run(dir, &["retrain", "--date", "2015-07-01"])
        .expect_code(0)
        .json();
    assert_eq!(v1["decision"], "promoted", "{v1}");
    let v1 = v1["challenger"]["version"].as_str().unwrap().to_string();
    cli(&linear)
        .run(dir, &["predict", "--date", "2015-07-01"])
        .expect_code(0);

    add_admin(&place);
    let server = Server::start(&cli(&linear), dir);
    let ready = server.wait_for("/readyz", SWITCH, |status, _| status == 200);
    let admin = server.login("root", ADMIN_PASSWORD).unwrap();
    assert_eq!(ready["model_sha256"], v1.as_str());

    // The stored forecasts of one store: 14 days, intervals, whose they are.
    let (status, one) = server.get_json("/v1/forecasts?Store=102");
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["model_sha256"], v1.as_str());
    assert_eq!(one["source"], "stored");
    assert_eq!(one["data_day"], "2015-07-01");
    let rows = one["forecasts"].as_array().unwrap();
    assert_eq!(rows.len(), 14, "{one}");
    for row in rows {
        let (f, lo, hi) = (
            row["forecast"].as_f64().unwrap(),
            row["lower"].as_f64().unwrap(),
            row["upper"].as_f64().unwrap(),
        );
        assert!(lo <= f && f <= hi, "{row}");
    }
    let (_, some) = server.get_json("/v1/forecasts?Store=102&from=2015-07-03&to=2015-07-05");
    assert_eq!(some["forecasts"].as_array().unwrap().len(), 3, "{some}");
    let (_, champion) = server.get_json("/v1/champion");
    assert_eq!(champion["model_sha256"], v1.as_str());
    assert_eq!(champion["decision"]["kind"], "promoted", "{champion}");
    assert!(champion["holdout_metrics"]["wape"].as_f64().unwrap() > 0.0);

    bad_requests_get_json_errors(&server, &v1);
    on_demand_forecasts_use_the_callers_plan(&server, &v1);

    // A request slower than serve.request_timeout_seconds gets a JSON 503.
    let hasty = place.config(&format!(
        "{}[serve]\npoll_seconds = 0.2\nrequest_timeout_seconds = 0.05\n",
        LINEAR.replace("[training]\n", serving)
    ));
    let hurried = Server::start(&place.cli(&hasty), dir);
    hurried.wait_for("/readyz", SWITCH, |status, _| status == 200);
    // The session made on the other server: both read the same key and accounts.
    hurried.use_session(admin.clone());
    // Every store at once: far slower than 0.05 s in a debug build.
    let many: Vec<String> = crate::predict::stores()
        .iter()
        .map(|store| format!("{{\"Store\": \"{store}\"}}"))
        .collect();
    let (status, body) = hurried.call(
        "POST",
        "/v1/forecasts",
        Some(&format!("{{\"series\": [{}]}}", many.join(","))),
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("took longer than 0.05 s"), "{body}");
    hurried.wait_for("/healthz", SWITCH, |status, _| status == 200);
    drop(hurried);

    // A better champion: the server switches to it by itself. The newest
    // stored forecasts are v1's, so it forecasts that day itself, and says so.
    let v2 = cli(&quick)
        .run(dir, &["retrain", "--date", "2015-07-31"])
        .expect_code(0)
        .json();
    assert_eq!(v2["decision"], "promoted", "{v2}");
    let v2 = v2["challenger"]["version"].as_str().unwrap().to_string();
    let served = server.wait_for("/v1/forecasts?Store=102", SWITCH, |_, j| {
        j["model_sha256"] == v2.as_str()
    });
    assert_eq!(
        served["source"], "computed",
        "v1's stored forecasts are not served as v2's: {served}"
    );
    assert_eq!(served["data_day"], "2015-07-01");
    // Its own forecasts, once predict writes them.
    cli(&quick)
        .run(dir, &["predict", "--date", "2015-07-31"])
        .expect_code(0);
    let served = server.wait_for("/v1/forecasts?Store=102", SWITCH, |_, j| j["source"] == "stored");
    assert_eq!(
        (served["model_sha256"].as_str(), served["data_day"].as_str()),
        (Some(v2.as_str()), Some("2015-07-31"))
    );

    // Rollback: back to v1, whose forecasts of 2015-07-31 are computed.
    cli(&linear)
        .run(dir, &["rollback", "--reason", "serve test"])
        .expect_code(0);
    let served = server.wait_for("/v1/forecasts?Store=102", SWITCH, |_, j| {
        j["model_sha256"] == v1.as_str()
    });
    assert_eq!(
        (served["source"].as_str(), served["data_day"].as_str()),
        (Some("computed"), Some("2015-07-31"))
    );
    let (_, champion) = server.get_json("/v1/champion");
    assert_eq!(champion["decision"]["kind"], "rolled_back", "{champion}");

    // A pointer at a version whose artifact does not hash to its name.
    let reloads_before = metric(&server, "salescast_reload_failures_total");
    point_at_a_corrupt_version(&place, &v1);
    let started = Instant::now();
    while metric(&server, "salescast_reload_failures_total") <= reloads_before {
        assert!(
            started.elapsed() < SWITCH,
            "the corrupt version was not refused:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, still) = server.get_json("/v1/forecasts?Store=102");
    assert_eq!(
        (status, still["model_sha256"].as_str()),
        (200, Some(v1.as_str())),
        "the old model keeps answering"
    );
    assert_eq!(server.get_json("/readyz").0, 200);
    assert!(
        server.log().contains("corrupt artifact"),
        "the refusal is logged with its reason:\n{}",
        server.log()
    );

    let metrics = server.call("GET", "/metrics", None).1;
    for expected in [
        "salescast_http_requests_total{route=\"/v1/forecasts\",method=\"GET\",status=\"200\"}",
        "salescast_http_requests_total{route=\"/v1/forecasts\",method=\"GET\",status=\"404\"}",
        "salescast_http_request_duration_seconds_bucket{route=\"/v1/forecasts\",le=\"+Inf\"}",
        &format!("salescast_model_info{{model_sha256=\"{v1}\""),
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from /metrics:\n{metrics}"
        );
    }
    assert!(metric(&server, "salescast_reloads_total") >= 4.0, "{metrics}");

    let session = server.login("root", ADMIN_PASSWORD).unwrap();
    // SIGTERM while a request is in flight (its body half sent): serve
    // finishes it, answers it, then exits 0.
    let body = "{\"series\": [{\"Store\": \"102\"}]}";
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "POST /v1/forecasts HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Cookie: salescast_session={}\r\nX-CSRF-Token: {}\r\nContent-Length: {}\r\n\r\n",
        session.cookie,
        session.csrf,
        body.len()
    );
    stream
        .write_all(format!("{head}{}", &body[..10]).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.signal_term();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the request in flight at SIGTERM: {answer}"
    );
    let (status, log) = server.wait();
    assert!(status.success(), "serve exited {status:?} on SIGTERM:\n{log}");
    assert!(log.contains("every request in flight was answered"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

fn bad_requests_get_json_errors(server: &Server, version: &str) {
    let big = format!(
        "{{\"series\": [{}]}}",
        vec!["{\"Store\": \"102\"}"; 20_000].join(",")
    );
    // (method, path, body, status, the parameter the error names)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, u16, Option<&'a str>);
    let twice = "{\"series\": [{\"Store\": \"102\"}, {\"Store\": \"102\"}]}";
    // One key given twice in a series (it was read as its last value).
    let key_twice = "{\"series\": [{\"Store\": \"102\", \"Store\": \"103\"}]}";
    // A plan value that overflows the features (it forecast 0).
    let huge = "{\"series\": [{\"Store\": \"102\"}], \"plan\": [{\"Store\": \"102\", \"Date\": \"2015-07-07\", \"Promo\": 1.7e308}]}";
    let cases: [Case; 14] = [
        ("GET", "/v1/forecasts?Store=99999", None, 404, None),
        (
            "GET",
            "/v1/forecasts?Store=102&from=2015-13-01",
            None,
            400,
            Some("from"),
        ),
        (
            "GET",
            "/v1/forecasts?Store=102&from=2015-07-05&to=2015-07-03",
            None,
            400,
            Some("from"),
        ),
        ("GET", "/v1/forecasts", None, 400, Some("Store")),
        ("GET", "/v1/forecasts?Store=102&Shop=2", None, 400, Some("Shop")),
        ("POST", "/v1/forecasts", Some("{not json"), 400, None),
        ("POST", "/v1/forecasts", Some(&big), 413, None),
        (
            "POST",
            "/v1/forecasts",
            Some("{\"series\": [{\"Store\": \"99999\"}]}"),
            404,
            None,
        ),
        ("GET", "/no/such/route", None, 404, None),
        ("POST", "/v1/forecasts", Some(twice), 400, Some("series")),
        (
            "GET",
            "/v1/forecasts?Store=102&from=2015-07-03&from=2015-07-04",
            None,
            400,
            Some("from"),
        ),
        ("DELETE", "/v1/forecasts", None, 405, None),
        ("POST", "/v1/forecasts", Some(key_twice), 400, None),
        ("POST", "/v1/forecasts", Some(huge), 400, Some("plan")),
    ];
    for (method, path, body, expected, parameter) in cases {
        let (status, text) = server.call(method, path, body);
        let json: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        assert_eq!(status, expected, "{method} {path}: {json}");
        assert_eq!(json["error"]["status"], expected, "{json}");
        assert!(
            json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
        if let Some(parameter) = parameter {
            assert_eq!(json["error"]["parameter"], parameter, "{method} {path}: {json}");
        }
        assert_eq!(
            json["model_sha256"], version,
            "every error names the model served: {json}"
        );
    }
}

fn on_demand_forecasts_use_the_callers_plan(server: &Server, version: &str) {
    let ask = |promo: u8| {
        let body = format!(
            "{{\"series\": [{{\"Store\": \"102\"}}], \"from\": \"2015-07-06\", \"to\": \"2015-07-08\",
              \"plan\": [{{\"Store\": 102, \"Date\": \"2015-07-07\", \"Promo\": {promo}, \"Open\": 1}}]}}"
        );
        let (status, text) = server.call("POST", "/v1/forecasts", Some(&body));
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["model_sha256"], version);
        assert_eq!(json["source"], "on_demand");
        let rows = json["series"][0]["forecasts"].as_array().unwrap().clone();
        assert_eq!(rows.len(), 3, "{json}");
        assert_eq!(rows[1]["target_date"], "2015-07-07");
        assert_eq!(rows[1]["planned"], true, "the caller's plan row: {json}");
        rows[1]["forecast"].as_f64().unwrap()
    };
    let (with, without) = (ask(1), ask(0));
    assert!(
        with > without,
        "a promotion raises the forecast: {with} vs {without}"
    );
    // A plan row outside the forecast days names the field.
    let body = "{\"series\": [{\"Store\": \"102\"}], \"plan\": [{\"Store\": \"102\", \"Date\": \"2016-01-01\", \"Promo\": 1}]}";
    let (status, text) = server.call("POST", "/v1/forecasts", Some(body));
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("outside the forecast days") && text.contains("\"parameter\":\"plan\""),
        "{text}"
    );
}

/// A metric's value (the first sample of that name).
fn metric(server: &Server, name: &str) -> f64 {
    let text = server.call("GET", "/metrics", None).1;
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Writes a version named by a hash its artifact does not have, and points
/// the champion at it: what a damaged copy or a hand edit would leave.
fn point_at_a_corrupt_version(place: &Place, good: &str) {
    let fake = "f".repeat(64);
    let model = "serving";
    let script = r#"
import sys, json, pathlib
registry, good, fake, model, endpoint = sys.argv[1:6]
def rw(read, write):
    pointer = json.loads(read(f"{model}/champion.json"))
    write(f"{model}/versions/{fake}/model.bin", read(f"{model}/versions/{good}/model.bin")[:-7] + b"damaged")
    manifest = json.loads(read(f"{model}/versions/{good}/manifest.json"))
    manifest["version"] = fake
    write(f"{model}/versions/{fake}/manifest.json", json.dumps(manifest).encode())
    pointer["version"] = fake
    pointer["decision"] = None
    write(f"{model}/champion.json", json.dumps(pointer).encode())
if registry.startswith("s3://"):
    import boto3
    bucket, _, prefix = registry[5:].partition("/")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    key = lambda k: f"{prefix}/{k}" if prefix else k
    rw(lambda k: s3.get_object(Bucket=bucket, Key=key(k))["Body"].read(),
       lambda k, b: s3.put_object(Bucket=bucket, Key=key(k), Body=b))
else:
    root = pathlib.Path(registry)
    def write(k, b):
        path = root / k
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("tmp-" + path.name)
        tmp.write_bytes(b)
        tmp.rename(path)
    rw(lambda k: (root / k).read_bytes(), write)
"#;
    let endpoint = if place.registry.starts_with("s3://") {
        s3_endpoint()
    } else {
        String::new()
    };
    python(script, &[&place.registry, good, &fake, model, &endpoint]);
}

/// A client that sends part of a request header and then nothing is cut off
/// after `serve.header_timeout_seconds` (else a few hundred such clients hold
/// every connection), and so is one idle after its answer; the server goes on
/// answering.
#[test]
fn a_header_never_finished_is_cut_off() {
    let place = Place::new(Backend::Local);
    let config = place.config(&format!("{LINEAR}[serve]\nheader_timeout_seconds = 1\n"));
    let server = Server::start(&place.cli(&config), place.dir.path());
    // Sends `bytes` on a new connection and reads until serve closes it
    // (a read timeout of 30 s is an error): what came back, and when.
    let closed_after = |bytes: &[u8]| {
        let mut stream = TcpStream::connect(&server.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.write_all(bytes).unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        let waited = started.elapsed();
        assert!(read.is_ok(), "not closed: {read:?} after {waited:?}");
        (String::from_utf8_lossy(&answer).to_string(), waited)
    };

    let (answer, waited) = closed_after(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(waited < Duration::from_secs(15), "closed after {waited:?}");

    let (answer, waited) = closed_after(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        waited >= Duration::from_millis(500),
        "closed after {waited:?}: {answer}"
    );

    assert_eq!(server.call("GET", "/healthz", None).0, 200);
    let log = server.wait_log();
    assert!(!log.contains("panicked"), "{log}");
}
