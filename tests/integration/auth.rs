//! Logins, sessions and roles of `salescast serve`, through the real binary:
//! the API needs a session; each role sees what it may (a store user only
//! their stores, by URL or on-demand request: 404 for any other); a state
//! change needs the CSRF token; cookies carry HttpOnly and SameSite=Strict;
//! five wrong passwords lock the account (one message for every refusal);
//! logins per address are throttled; disabling a user ends their sessions on
//! another server process sharing the registry; logout ends the session; no
//! password or cookie appears in any log.

use std::time::Duration;

use crate::retrain::{Backend, Place};
use crate::server_util::{Server, Session};
use crate::util::{LINEAR, Outcome};

const SWITCH: Duration = Duration::from_secs(120);

fn add(place: &Place, name: &str, role: &str, stores: &[&str], password: &str) -> Outcome {
    let mut args = vec!["add", name, "--role", role, "--password-stdin"];
    for store in stores {
        args.extend(["--store", store]);
    }
    crate::users::users(place, &args, Some(&format!("{password}\n"))).expect_code(0)
}

#[test]
fn roles_sessions_csrf_lockout_and_revocation() {
    let place = Place::new(Backend::Local);
    let config = place.config(&format!(
        "{LINEAR}[serve]\npoll_seconds = 0.2\nlogins_per_minute = 40\n"
    ));
    place.retrain(&config, "2015-07-31").expect_code(0);
    let passwords = [
        ("root", "admin", "root's long password"),
        ("maria", "store", "maria's long password"),
        ("mo", "manager", "mo's long password!!"),
        ("ann", "analyst", "ann's long password!"),
    ];
    let mut cli_output = String::new();
    for (name, role, password) in passwords {
        let stores: &[&str] = if role == "store" { &["102"] } else { &[] };
        let out = add(&place, name, role, stores, password);
        cli_output.push_str(&out.stdout);
        cli_output.push_str(&out.stderr);
    }
    let server = Server::start(&place.cli(&config), place.dir.path());
    server.wait_for("/readyz", SWITCH, |status, _| status == 200);

    // Open: health and metrics. Closed: the API, without a session.
    assert_eq!(server.call_as(None, "GET", "/healthz", None).0, 200);
    assert_eq!(server.call_as(None, "GET", "/metrics", None).0, 200);
    let (status, body) = server.call_as(None, "GET", "/v1/forecasts?Store=102", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"status\":401"), "a JSON error: {body}");
    let served = server.get_json("/readyz").1["model_sha256"].clone();
    let named = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap()["model_sha256"].clone();
    assert_eq!(
        named(&body),
        served,
        "every JSON error names the model served: {body}"
    );

    // One answer for every refused login, and never sooner than 0.4 s (a
    // wrong password also writes the account: a known name took longer).
    let timed = |user: &str, password: &str| {
        let started = std::time::Instant::now();
        let refused = server.login(user, password).unwrap_err();
        let took = started.elapsed();
        assert!(
            took >= std::time::Duration::from_millis(400),
            "{user}: refused in {took:?}"
        );
        refused
    };
    let wrong = timed("maria", "not maria's password");
    let unknown = timed("nobody", "not anyone's password");
    assert_eq!((wrong.0, unknown.0), (401, 401));
    assert_eq!(named(&wrong.1), served, "{}", wrong.1);
    let message =
        |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap()["error"]["message"].clone();
    assert_eq!(
        message(&wrong.1),
        message(&unknown.1),
        "{} / {}",
        wrong.1,
        unknown.1
    );

    // A login larger than serve.max_body_bytes (256 KiB) is refused as
    // every other body is: 413, a JSON error.
    let big = format!(
        "{{\"user\": \"{}\", \"password\": \"x\"}}",
        "a".repeat(300 * 1024)
    );
    let (status, body) = server.call_as(None, "POST", "/login", Some(&big));
    assert_eq!(status, 413, "{}", &body[..body.len().min(200)]);
    assert!(body.contains("\"status\":413"), "a JSON error: {body}");

    // A store user: their store only, by URL and by on-demand request.
    let maria = server.login("maria", "maria's long password").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            maria.set_cookie.contains(flag),
            "{flag} missing: {}",
            maria.set_cookie
        );
    }
    let as_maria = |method, path, body| server.call_as(Some(&maria), method, path, body);
    assert_eq!(as_maria("GET", "/v1/forecasts?Store=102", None).0, 200);
    let (status, body) = as_maria("GET", "/v1/forecasts?Store=1020", None);
    assert_eq!(status, 404, "another store's forecasts: {body}");
    assert_eq!(
        as_maria(
            "POST",
            "/v1/forecasts",
            Some("{\"series\": [{\"Store\": \"1020\"}]}")
        )
        .0,
        404
    );
    let plan_elsewhere = "{\"series\": [{\"Store\": \"102\"}], \"plan\": [{\"Store\": \"1020\", \"Date\": \"2015-08-04\", \"Promo\": 1}]}";
    assert_eq!(as_maria("POST", "/v1/forecasts", Some(plan_elsewhere)).0, 404);
    assert_eq!(
        as_maria(
            "POST",
            "/v1/forecasts",
            Some("{\"series\": [{\"Store\": \"102\"}]}")
        )
        .0,
        200
    );
    assert_eq!(
        as_maria("GET", "/v1/champion", None).0,
        403,
        "the model is for analysts"
    );
    // A state change without the CSRF token, or with another session's, is refused.
    let no_csrf = Session {
        csrf: String::new(),
        ..maria.clone()
    };
    let (status, body) = server.call_as(
        Some(&no_csrf),
        "POST",
        "/v1/forecasts",
        Some("{\"series\": [{\"Store\": \"102\"}]}"),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    // A forged cookie is no session.
    let forged = Session {
        cookie: format!("{}0", maria.cookie),
        ..maria.clone()
    };
    assert_eq!(
        server
            .call_as(Some(&forged), "GET", "/v1/forecasts?Store=102", None)
            .0,
        401
    );

    // Managers see every store but not the model; analysts see the model.
    let mo = server.login("mo", "mo's long password!!").unwrap();
    assert_eq!(
        server
            .call_as(Some(&mo), "GET", "/v1/forecasts?Store=1020", None)
            .0,
        200
    );
    assert_eq!(server.call_as(Some(&mo), "GET", "/v1/champion", None).0, 403);
    let ann = server.login("ann", "ann's long password!").unwrap();
    assert_eq!(server.call_as(Some(&ann), "GET", "/v1/champion", None).0, 200);

    // Five wrong passwords lock the account: then even the right one fails.
    for _ in 0..5 {
        assert_eq!(server.login("mo", "a wrong password guess").unwrap_err().0, 401);
    }
    let locked = server.login("mo", "mo's long password!!").unwrap_err();
    assert_eq!(locked.0, 401, "locked: {}", locked.1);
    assert_eq!(
        message(&locked.1),
        message(&wrong.1),
        "a locked account answers like a wrong password"
    );

    // Disabling maria ends her sessions on another process sharing the registry.
    let other = Server::start(&place.cli(&config), place.dir.path());
    other.wait_for("/readyz", SWITCH, |status, _| status == 200);
    let maria_there = other.login("maria", "maria's long password").unwrap();
    assert_eq!(
        other
            .call_as(Some(&maria_there), "GET", "/v1/forecasts?Store=102", None)
            .0,
        200
    );
    let out = crate::users::users(&place, &["disable", "maria"], None).expect_code(0);
    cli_output.push_str(&out.stdout);
    other.wait_for("/healthz", SWITCH, |_, _| {
        other
            .call_as(Some(&maria_there), "GET", "/v1/forecasts?Store=102", None)
            .0
            == 401
    });
    assert_eq!(
        as_maria("GET", "/v1/forecasts?Store=102", None).0,
        401,
        "and on this one"
    );

    // Logout ends the session.
    assert_eq!(server.call_as(Some(&ann), "POST", "/logout", None).0, 200);
    assert_eq!(server.call_as(Some(&ann), "GET", "/v1/champion", None).0, 401);

    // The audit log saw it all.
    let store = place.registry_store();
    let events: Vec<String> = store
        .list("accounts/audit/")
        .unwrap()
        .iter()
        .map(|m| {
            let entry: serde_json::Value = serde_json::from_slice(&store.get(&m.key).unwrap().bytes).unwrap();
            entry["event"].as_str().unwrap().to_string()
        })
        .collect();
    for event in ["login", "login_failed", "locked", "user_disabled", "logout"] {
        assert!(
            events.iter().any(|e| e == event),
            "{event} not audited: {events:?}"
        );
    }

    // No password and no session cookie in any log line.
    let logs = format!("{}{}{cli_output}", server.wait_log(), other.wait_log());
    for (_, _, password) in passwords {
        assert!(!logs.contains(password), "a password in the logs");
    }
    for session in [&maria, &mo, &ann, &maria_there] {
        assert!(!logs.contains(&session.cookie), "a session cookie in the logs");
    }
}

#[test]
fn logins_from_one_address_are_throttled() {
    let place = Place::new(Backend::Local);
    let config = place.config(&format!(
        "{LINEAR}[serve]\npoll_seconds = 0.2\nlogins_per_minute = 3\n"
    ));
    place.retrain(&config, "2015-07-31").expect_code(0);
    add(&place, "root", "admin", &[], "root's long password");
    let server = Server::start(&place.cli(&config), place.dir.path());
    server.wait_for("/readyz", SWITCH, |status, _| status == 200);
    for _ in 0..3 {
        assert_eq!(server.login("root", "wrong password here").unwrap_err().0, 401);
    }
    let (status, body) = server.login("root", "root's long password").unwrap_err();
    assert_eq!(status, 429, "{body}");
}
