//! Bearer API tokens through the real binary on both backends: an admin
//! makes one for a user with `users token-add` (printed once, stored as a
//! hash), `users tokens` lists them without secrets, `users token-revoke`
//! ends one; on a real server a token reads what its user may (a store
//! user's token only that store), posts without a CSRF token, and stops
//! working within a poll once revoked or once its user is disabled; no token
//! appears in any log line or stored object.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::retrain::{Backend, Place};
use crate::serve::add_admin;
use crate::server_util::{Server, request};
use crate::util::{Cli, LINEAR, Outcome, on_every_backend, repo_file};

on_every_backend!(
    tokens_are_made_once_listed_without_secrets_and_revoked,
    a_token_acts_as_its_user_until_revoked_or_disabled,
);

const SWITCH: Duration = Duration::from_secs(120);

fn users(place: &Place, args: &[&str]) -> Outcome {
    crate::users::users(place, args, None)
}

fn add(place: &Place, name: &str, role: &str, stores: &[&str]) {
    let mut args = vec!["add", name, "--role", role, "--password-stdin"];
    for store in stores {
        args.extend(["--store", store]);
    }
    crate::users::users(place, &args, Some(&format!("{name}'s long password\n"))).expect_code(0);
}

/// `users token-add USER --label LABEL`: (id, token text).
fn token_add(place: &Place, user: &str, label: &str) -> (String, String) {
    let out = users(place, &["token-add", user, "--label", label]).expect_code(0);
    let json = out.json();
    assert_eq!(json["action"], "token_added");
    let text = json["token"].as_str().unwrap().to_string();
    let id = json["tokens"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(json["tokens"][0]["user"], user);
    assert!(text.starts_with(&format!("sct_{id}_")), "{text}");
    (id, text)
}

/// The secret part of a token's text.
fn secret(text: &str) -> &str {
    text.rsplit('_').next().unwrap()
}

/// The audit log's events, oldest first.
fn audit_events(place: &Place) -> Vec<Value> {
    let store = place.registry_store();
    store
        .list("accounts/audit/")
        .unwrap()
        .iter()
        .map(|m| serde_json::from_slice(&store.get(&m.key).unwrap().bytes).unwrap())
        .collect()
}

/// Every object under `accounts/`, as text.
fn stored_accounts(place: &Place) -> String {
    let store = place.registry_store();
    store
        .list("accounts/")
        .unwrap()
        .iter()
        .map(|m| String::from_utf8_lossy(&store.get(&m.key).unwrap().bytes).into_owned())
        .collect()
}

fn tokens_are_made_once_listed_without_secrets_and_revoked(backend: Backend) {
    let place = Place::new(backend);
    add_admin(&place);
    add(&place, "maria", "store", &["102"]);

    let (id, text) = token_add(&place, "maria", "nightly export");
    // For a person: the token, once, with a line saying so.
    let human = Cli::new(&repo_file("examples/rossmann.toml"), &place.lake)
        .registry(&place.registry)
        .flags(&place.flags)
        .run(
            place.dir.path(),
            &["users", "token-add", "root", "--label", "ops laptop"],
        )
        .expect_code(0);
    let second = human
        .stdout
        .lines()
        .find(|l| l.starts_with("sct_"))
        .unwrap_or_else(|| panic!("no token printed: {}", human.stdout))
        .to_string();
    assert!(human.stdout.contains("not shown again"), "{}", human.stdout);

    // Refusals: usage errors naming the problem.
    for (args, says) in [
        (vec!["token-add", "nobody", "--label", "x"], "no user \"nobody\""),
        (vec!["token-add", "maria", "--label", ""], "token label"),
        (vec!["token-add", "maria"], "--label"),
        (
            vec!["token-revoke", "0123456789abcdef"],
            "no API token \"0123456789abcdef\"",
        ),
    ] {
        let out = users(&place, &args).expect_code(2);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }

    // Listed, JSON and text, without a secret or its hash.
    let listed = users(&place, &["tokens"]).expect_code(0);
    let json = listed.json();
    let tokens = json["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{json}");
    assert_eq!(
        (tokens[0]["id"].as_str(), tokens[0]["label"].as_str()),
        (Some(id.as_str()), Some("nightly export"))
    );
    assert!(
        tokens
            .iter()
            .all(|t| t["revoked_at"].is_null() && t.get("sha256").is_none())
    );
    let listed_text = Cli::new(&repo_file("examples/rossmann.toml"), &place.lake)
        .registry(&place.registry)
        .flags(&place.flags)
        .run(place.dir.path(), &["users", "tokens"])
        .expect_code(0)
        .stdout;
    assert!(
        listed_text.contains(&id) && listed_text.contains("ops laptop"),
        "{listed_text}"
    );
    for out in [&listed.stdout, &listed_text] {
        for token in [&text, &second] {
            assert!(!out.contains(secret(token)), "a secret listed: {out}");
        }
        assert!(!out.contains("sct_"), "{out}");
    }

    // Revoked once; a second time is an error naming it.
    let revoked = users(&place, &["token-revoke", &id]).expect_code(0).json();
    assert_eq!(revoked["action"], "token_revoked");
    assert!(revoked["tokens"][0]["revoked_at"].is_string(), "{revoked}");
    let twice = users(&place, &["token-revoke", &id]).expect_code(2);
    assert!(
        twice.stderr.contains(&format!("{id:?} is already revoked")),
        "{}",
        twice.stderr
    );

    let events: Vec<(String, String)> = audit_events(&place)
        .iter()
        .filter(|e| e["event"].as_str().unwrap().starts_with("token"))
        .map(|e| {
            (
                e["event"].as_str().unwrap().into(),
                e["subject"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("token_added".to_string(), "maria".to_string()),
            ("token_added".into(), "root".into()),
            ("token_revoked".into(), "maria".into()),
        ]
    );
    let stored = stored_accounts(&place);
    for token in [&text, &second] {
        assert!(!stored.contains(secret(token)), "a secret stored");
    }
}

/// One request with `Authorization: Bearer TOKEN` and nothing else (no
/// cookie, no CSRF token): (status, body).
fn bearer(server: &Server, token: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let headers = [("Authorization".to_string(), format!("Bearer {token}"))];
    let reply = request(&server.addr, method, path, body, &headers);
    (reply.status, reply.body)
}

/// Polls until the token is refused (401 with the one message), failing
/// after `limit`; how long it took.
fn until_refused(server: &Server, token: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = bearer(server, token, "GET", "/v1/forecasts?Store=102", None);
        if status == 401 {
            assert!(body.contains("invalid or revoked API token"), "{body}");
            return started.elapsed();
        }
        assert_eq!(status, 200, "{body}");
        assert!(started.elapsed() < limit, "the token still works after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn a_token_acts_as_its_user_until_revoked_or_disabled(backend: Backend) {
    let place = Place::new(backend);
    let config = place.config(&format!("{LINEAR}[serve]\npoll_seconds = 0.2\n"));
    place.retrain(&config, "2015-07-31").expect_code(0);
    add_admin(&place);
    add(&place, "maria", "store", &["102"]);
    add(&place, "ann", "analyst", &[]);
    let mut cli_output = String::new();
    let (maria_id, maria_token) = token_add(&place, "maria", "store 102 export");
    let (_, maria_second) = token_add(&place, "maria", "store 102 backup");
    let (_, ann_token) = token_add(&place, "ann", "model monitor");

    let server = Server::start(&place.cli(&config), place.dir.path());
    server.wait_for("/readyz", SWITCH, |status, _| status == 200);

    // A store user's token: that store only, by URL and by on-demand request.
    let (status, body) = bearer(&server, &maria_token, "GET", "/v1/forecasts?Store=102", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = bearer(&server, &maria_token, "GET", "/v1/forecasts?Store=1020", None);
    assert_eq!(status, 404, "another store's forecasts: {body}");
    let mine = "{\"series\": [{\"Store\": \"102\"}]}";
    let theirs = "{\"series\": [{\"Store\": \"1020\"}]}";
    let (status, body) = bearer(&server, &maria_token, "POST", "/v1/forecasts", Some(mine));
    assert_eq!(
        status, 200,
        "a POST needs no CSRF token with a bearer token: {body}"
    );
    assert_eq!(
        bearer(&server, &maria_token, "POST", "/v1/forecasts", Some(theirs)).0,
        404
    );
    assert_eq!(
        bearer(&server, &maria_token, "GET", "/v1/champion", None).0,
        403,
        "the model is for analysts"
    );
    assert_eq!(bearer(&server, &ann_token, "GET", "/v1/champion", None).0, 200);
    assert_eq!(
        bearer(&server, &ann_token, "GET", "/v1/forecasts?Store=1020", None).0,
        200
    );

    // Wrong, malformed or empty tokens: one 401 for all.
    let wrong_secret = format!(
        "{}{}",
        &maria_token[..maria_token.len() - 1],
        if maria_token.ends_with('0') { '1' } else { '0' }
    );
    for bad in [wrong_secret.as_str(), "sct_nonsense", ""] {
        let (status, body) = bearer(&server, bad, "GET", "/v1/forecasts?Store=102", None);
        assert_eq!(status, 401, "{bad:?}: {body}");
        assert!(body.contains("invalid or revoked API token"), "{body}");
    }

    // Revoked: refused within a poll or so; the user's other token still works.
    let out = users(&place, &["token-revoke", &maria_id]).expect_code(0);
    cli_output.push_str(&out.stdout);
    let took = until_refused(&server, &maria_token, Duration::from_secs(20));
    eprintln!("a revoked token was refused after {took:?}");
    assert_eq!(
        bearer(&server, &maria_second, "GET", "/v1/forecasts?Store=102", None).0,
        200
    );

    // A disabled user's tokens stop too.
    let out = users(&place, &["disable", "maria"]).expect_code(0);
    cli_output.push_str(&out.stdout);
    until_refused(&server, &maria_second, Duration::from_secs(20));
    assert_eq!(bearer(&server, &ann_token, "GET", "/v1/champion", None).0, 200);

    let listed = users(&place, &["tokens"]).expect_code(0);
    cli_output.push_str(&listed.stdout);
    let events: Vec<String> = audit_events(&place)
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    for event in ["token_added", "token_revoked", "user_disabled"] {
        assert!(events.iter().any(|e| e == event), "{event}: {events:?}");
    }

    // No token in any log line, later output or stored object.
    let logs = format!("{}{cli_output}", server.wait_log());
    let stored = stored_accounts(&place);
    for token in [&maria_token, &maria_second, &ann_token] {
        assert!(!logs.contains(token.as_str()), "a token in the logs");
        assert!(!logs.contains(secret(token)), "a token's secret in the logs");
        assert!(!stored.contains(secret(token)), "a token's secret stored");
    }
}
