//! The dashboard's pages over HTTP, through the real binary on a lake
//! ingested from rossmann (two daily runs: retrain and predict on
//! 2015-07-24 and 2015-07-31, so the second day's forecasts can be
//! compared with the first day's): each role's pages and the pages it may
//! not see (403), a store user's attempts at another store by URL, CSV and
//! API (404), form posts refused without the CSRF token, an admin's
//! rollback and user changes through the forms, and logout. The browser
//! tests (`browser_dashboard.rs`) drive the same pages in Chromium.

use std::path::Path;
use std::time::Duration;

use crate::retrain::{Backend, Place};
use crate::server_util::{Reply, Server, request};
use crate::users::users;
use crate::util::{LINEAR, copy_tree};

/// (name, role, password); `maria` is staff of store 102.
pub const USERS: [(&str, &str, &str); 4] = [
    ("root", "admin", "root's long password"),
    ("maria", "store", "maria's long password"),
    ("mo", "manager", "mo's long password!!"),
    ("ann", "analyst", "ann's long password!"),
];

pub fn password(name: &str) -> &'static str {
    USERS.iter().find(|u| u.0 == name).map(|u| u.2).unwrap()
}

/// A served rossmann lake with two days of forecasts and the four users.
pub struct Dashboard {
    pub place: Place,
    pub server: Server,
}

impl Dashboard {
    pub fn start() -> Self {
        let mut place = Place::new(Backend::Local);
        // predict writes into the lake: a copy of the shared one.
        let lake = place.dir.path().join("lake");
        copy_tree(Path::new(&place.lake), &lake);
        place.lake = lake.to_str().unwrap().to_string();
        let config = place.config(&format!(
            "{LINEAR}[serve]\npoll_seconds = 0.2\nlogins_per_minute = 500\n"
        ));
        for day in ["2015-07-24", "2015-07-31"] {
            place.retrain(&config, day).expect_code(0);
            place.run(&config, &["predict", "--date", day]).expect_code(0);
        }
        for (name, role, pass) in USERS {
            let mut args = vec!["add", name, "--role", role, "--password-stdin"];
            if role == "store" {
                args.extend(["--store", "102"]);
            }
            users(&place, &args, Some(&format!("{pass}\n"))).expect_code(0);
        }
        let server = Server::start(&place.cli(&config), place.dir.path());
        server.wait_for("/readyz", Duration::from_secs(120), |status, _| status == 200);
        Self { place, server }
    }

    /// A GET with the session cookie (if any).
    pub fn get(&self, cookie: Option<&str>, path: &str) -> Reply {
        request(&self.server.addr, "GET", path, None, &cookie_header(cookie))
    }

    /// A form post (fields URL-encoded) with the session cookie.
    pub fn post_form(&self, cookie: Option<&str>, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body: String = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut headers = cookie_header(cookie);
        headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
        request(&self.server.addr, "POST", path, Some(&body), &headers)
    }

    /// Logs in through the login form: the session cookie.
    pub fn form_login(&self, user: &str) -> String {
        let reply = self.post_form(
            None,
            "/login",
            &[("user", user), ("password", password(user)), ("next", "/")],
        );
        assert_eq!(reply.status, 303, "{user}'s login: {}", reply.body);
        session_cookie(&reply).unwrap_or_else(|| panic!("no session cookie for {user}"))
    }
}

fn cookie_header(cookie: Option<&str>) -> Vec<(String, String)> {
    cookie
        .map(|c| vec![("Cookie".to_string(), format!("salescast_session={c}"))])
        .unwrap_or_default()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn session_cookie(reply: &Reply) -> Option<String> {
    let value = header(reply, "set-cookie")?.split(';').next()?;
    Some(value.strip_prefix("salescast_session=")?.to_string())
}

/// The CSRF token a page's forms carry.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with the CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_string()
}

#[test]
fn each_role_sees_its_pages_and_a_store_user_only_their_store() {
    let d = Dashboard::start();

    // Without a session: the login page, and back after it.
    let reply = d.get(None, "/chain");
    assert_eq!(reply.status, 303);
    assert_eq!(header(&reply, "location"), Some("/login?next=%2Fchain"));
    let login = d.get(None, "/login?next=%2Fchain");
    assert_eq!(login.status, 200);
    assert!(
        login.body.contains("name=\"next\" value=\"/chain\""),
        "{}",
        login.body
    );
    let wrong = d.post_form(
        None,
        "/login",
        &[("user", "maria"), ("password", "not it at all")],
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("wrong user name or password"));
    // Another host is never a place to go back to.
    let open_redirect = d.post_form(
        None,
        "/login",
        &[
            ("user", "mo"),
            ("password", password("mo")),
            ("next", "//evil.example/"),
        ],
    );
    assert_eq!(header(&open_redirect, "location"), Some("/"));
    // An unknown path: a page for a browser, JSON for a machine.
    let html = [(
        "Accept".to_string(),
        "text/html,application/xhtml+xml".to_string(),
    )];
    let lost = request(&d.server.addr, "GET", "/no/such/page", None, &html);
    assert_eq!(lost.status, 404);
    assert!(lost.body.contains("<h1>404 Not Found</h1>"), "{}", lost.body);
    let lost = d.get(None, "/no/such/page");
    assert_eq!(lost.status, 404);
    assert!(lost.body.contains("\"status\":404"), "{}", lost.body);
    // A login forged on another site is refused: by its Origin, or as a
    // JSON body sent as text/plain (what a cross-site form can send).
    let forged = request(
        &d.server.addr,
        "POST",
        "/login",
        Some("user=mo&password=x"),
        &[
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("Origin".to_string(), "https://evil.example".to_string()),
        ],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    let plain = request(
        &d.server.addr,
        "POST",
        "/login",
        Some(r#"{"user": "mo", "password": "mo's long password!!"}"#),
        &[("Content-Type".to_string(), "text/plain".to_string())],
    );
    assert_eq!(plain.status, 415, "{}", plain.body);
    let css = d.get(None, "/assets/app.css");
    assert_eq!(
        (css.status, header(&css, "content-type")),
        (200, Some("text/css; charset=utf-8"))
    );

    // A store user: their store's page, CSV and API; nothing of another store.
    let maria = d.form_login("maria");
    assert_eq!(header(&d.get(Some(&maria), "/"), "location"), Some("/stores/102"));
    let page = d.get(Some(&maria), "/stores/102");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
    assert_eq!(header(&page, "x-frame-options"), Some("DENY"));
    assert!(page.body.contains("<svg class=\"chart\""), "the chart is drawn");
    assert!(page.body.contains("class=\"band\""), "with the interval band");
    assert!(page.body.contains("2015-07-31"), "the data day is shown");
    assert_eq!(
        page.body.matches("<td>Sat 2015-08-").count(),
        2,
        "14 days: two Saturdays"
    );
    let csv = d.get(Some(&maria), "/stores/102/forecast.csv");
    assert_eq!(csv.status, 200);
    assert_eq!(header(&csv, "content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 15, "a header and 14 days: {}", csv.body);
    assert!(lines[0].starts_with("Store,target_date,forecast,lower,upper"));
    assert!(lines[1..].iter().all(|l| l.starts_with("102,2015-08-")));
    for other in [
        "/stores/1020",
        "/stores/1020/forecast.csv",
        "/stores/no-such-store",
    ] {
        let reply = d.get(Some(&maria), other);
        assert_eq!(reply.status, 404, "{other}: {}", reply.body);
        assert!(!reply.body.contains("2015-08-01"), "{other} shows no data");
    }
    let (status, _) = d.server.call_as(None, "GET", "/v1/forecasts?Store=1020", None);
    assert_eq!(status, 401);
    let list = d.get(Some(&maria), "/stores");
    assert!(list.body.contains("href=\"/stores/102\""));
    assert_eq!(
        list.body.matches("href=\"/stores/").count(),
        1,
        "only her store is listed"
    );
    for closed in ["/chain", "/chain.csv", "/model", "/admin"] {
        assert_eq!(d.get(Some(&maria), closed).status, 403, "{closed}");
    }

    // A manager: the chain, every store, sorted tables and their CSV.
    let mo = d.form_login("mo");
    assert_eq!(header(&d.get(Some(&mo), "/"), "location"), Some("/chain"));
    let chain = d.get(Some(&mo), "/chain");
    assert_eq!(chain.status, 200, "{}", chain.body);
    assert_eq!(
        chain.body.matches("class=\"store-row\"").count(),
        100,
        "100 stores"
    );
    assert!(
        chain
            .body
            .contains("forecasts of 2015-07-24 scored through 2015-07-31"),
        "{}",
        chain.body
    );
    let by_error = d.get(Some(&mo), "/chain.csv?sort=error&dir=desc");
    let rows: Vec<Vec<&str>> = by_error
        .body
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 100);
    let errors: Vec<f64> = rows.iter().map(|r| r[7].parse().unwrap()).collect();
    assert!(
        errors.windows(2).all(|w| w[0] >= w[1]),
        "sorted by error, largest first: {errors:?}"
    );
    assert!(errors.iter().all(|e| (0.0..2.0).contains(e)) && errors[0] > 0.0);
    let by_store = d.get(Some(&mo), "/chain.csv?sort=store&dir=asc");
    let ids: Vec<u32> = by_store
        .body
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 100);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "stores in numeric order: {ids:?}"
    );
    assert_eq!(d.get(Some(&mo), "/chain?sort=nonsense").status, 400);
    assert_eq!(d.get(Some(&mo), "/stores/1020").status, 200);
    assert_eq!(d.get(Some(&mo), "/model").status, 403);

    // An analyst: the model page.
    let ann = d.form_login("ann");
    let model = d.get(Some(&ann), "/model");
    assert_eq!(model.status, 200, "{}", model.body);
    let listing = d.place.registry_cmd(&["models", "list"]).expect_code(0).json();
    let champion = listing["champion"].as_str().expect("a champion after two runs");
    assert!(model.body.contains(champion), "the champion {champion} is shown");
    assert!(model.body.contains("id=\"decisions\""));
    assert_eq!(d.get(Some(&ann), "/admin").status, 403);
}

#[test]
fn admin_forms_need_the_csrf_token_and_roll_back_through_the_registry() {
    let d = Dashboard::start();
    let root = d.form_login("root");
    let admin = d.get(Some(&root), "/admin");
    assert_eq!(admin.status, 200, "{}", admin.body);
    let csrf = csrf_of(&admin.body);
    let target = admin
        .body
        .split("<option value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|v| v.len() == 64)
        .expect("an earlier version to roll back to")
        .to_string();

    // Without the token, or with another session's: refused, nothing changes.
    let before = d.place.decisions().len();
    let fields = [
        ("to", target.as_str()),
        ("reason", "the forecasts of store 7 look wrong"),
    ];
    assert_eq!(d.post_form(Some(&root), "/admin/rollback", &fields).status, 403);
    let mo = d.form_login("mo");
    let mo_csrf = csrf_of(&d.get(Some(&mo), "/stores").body);
    let mut forged = fields.to_vec();
    forged.push(("csrf", &mo_csrf));
    assert_eq!(d.post_form(Some(&root), "/admin/rollback", &forged).status, 403);
    // A manager may not roll back even with their own token, and learns
    // nothing of the form: an incomplete one gets the same 403 page.
    assert_eq!(d.post_form(Some(&mo), "/admin/rollback", &forged).status, 403);
    let probe = d.post_form(Some(&mo), "/admin/rollback", &[("csrf", &mo_csrf)]);
    assert_eq!(probe.status, 403, "{}", probe.body);
    assert!(is_page(&probe) && !probe.body.contains("field"), "{}", probe.body);
    // An admin's incomplete form, or a name that is not UTF-8: a 400 page
    // (axum answered 422 and 400 in plain text).
    let incomplete = d.post_form(Some(&root), "/admin/users", &[("csrf", &csrf), ("name", "x")]);
    assert_eq!(incomplete.status, 400, "{}", incomplete.body);
    assert!(
        is_page(&incomplete) && incomplete.body.contains("role"),
        "{}",
        incomplete.body
    );
    let garbled = d.post_form(Some(&root), "/admin/users/%FF/disable", &[("csrf", &csrf)]);
    assert_eq!(garbled.status, 400, "{}", garbled.body);
    assert!(is_page(&garbled), "{}", garbled.body);
    // A wrong method from a browser: the 405 page, not JSON.
    let mut browser = cookie_header(Some(&root));
    browser.push(("Accept".into(), "text/html".into()));
    let wrong = request(&d.server.addr, "GET", "/admin/users", None, &browser);
    assert_eq!(wrong.status, 405, "{}", wrong.body);
    assert!(is_page(&wrong), "{}", wrong.body);
    // A reason is required.
    let empty = d.post_form(
        Some(&root),
        "/admin/rollback",
        &[("csrf", &csrf), ("to", &target), ("reason", " ")],
    );
    assert_eq!(empty.status, 400, "{}", empty.body);
    assert_eq!(d.place.decisions().len(), before);

    let mut with_token = fields.to_vec();
    with_token.push(("csrf", &csrf));
    let done = d.post_form(Some(&root), "/admin/rollback", &with_token);
    assert_eq!(done.status, 303, "{}", done.body);
    let decisions = d.place.decisions();
    assert_eq!(decisions.len(), before + 1);
    let last = decisions.last().unwrap();
    assert_eq!(last["kind"], "rolled_back");
    assert_eq!(last["actor"], "root");
    assert_eq!(last["reason"], "the forecasts of store 7 look wrong");
    assert_eq!(last["champion_after"], target.as_str());
    // The server follows; the model page shows the decision and who made it.
    d.server.wait_for("/readyz", Duration::from_secs(60), |_, body| {
        body["model_sha256"].as_str() == Some(target.as_str())
    });
    let model = d.get(Some(&root), "/model");
    assert!(
        model.body.contains("<td class=\"actor\">root</td>"),
        "{}",
        model.body
    );
    let audit = d.get(Some(&root), "/admin");
    assert!(
        audit.body.contains("rolled_back"),
        "the audit log lists the rollback"
    );
    // A rollback to a version whose model.bin is gone: the page again with
    // what is missing (422), not an internal error; nothing changes.
    let other = audit
        .body
        .split("<option value=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|v| v.len() == 64 && *v != target)
        .expect("another version")
        .to_string();
    let model = Path::new(&d.place.registry).join(format!("sales/versions/{other}/model.bin"));
    std::fs::remove_file(&model).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let broken = d.post_form(
        Some(&root),
        "/admin/rollback",
        &[("csrf", &csrf), ("to", &other), ("reason", "try the old one")],
    );
    assert_eq!(broken.status, 422, "{}", broken.body);
    assert!(broken.body.contains("model.bin is missing"), "{}", broken.body);
    assert_eq!(d.place.decisions().len(), before + 1);

    // Users through the forms: add, then disabling ends their session.
    let added = d.post_form(
        Some(&root),
        "/admin/users",
        &[
            ("csrf", &csrf),
            ("name", "sam"),
            ("role", "store"),
            ("stores", "1020, 1029"),
            ("password", "sam's long password"),
        ],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    let listed = users(&d.place, &["list"], None).expect_code(0).stdout;
    assert!(listed.contains("sam") && listed.contains("1029"), "{listed}");
    let short = d.post_form(
        Some(&root),
        "/admin/users",
        &[
            ("csrf", &csrf),
            ("name", "kim"),
            ("role", "store"),
            ("stores", "1"),
            ("password", "short"),
        ],
    );
    assert_eq!(
        short.status, 400,
        "a short password is refused with the page: {}",
        short.body
    );
    let maria = d.form_login("maria");
    assert_eq!(d.get(Some(&maria), "/stores/102").status, 200);
    let disabled = d.post_form(Some(&root), "/admin/users/maria/disable", &[("csrf", &csrf)]);
    assert_eq!(disabled.status, 303, "{}", disabled.body);
    let after = d.get(Some(&maria), "/stores/102");
    assert_eq!(after.status, 303, "a disabled user's session has ended");
    let self_disable = d.post_form(Some(&root), "/admin/users/root/disable", &[("csrf", &csrf)]);
    assert_eq!(self_disable.status, 400);

    // Logout through the form ends the session.
    let out = d.post_form(Some(&root), "/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert_eq!(header(&out, "location"), Some("/login?ended=1"));
    assert_eq!(d.get(Some(&root), "/admin").status, 303);
    // Log out again with the ended session (a second tab): the login page,
    // not a JSON 401.
    let again = d.post_form(Some(&root), "/logout", &[("csrf", &csrf)]);
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(header(&again, "location"), Some("/login?ended=1"));
}

/// An HTML page (the dashboard's error page), not JSON or plain text.
fn is_page(reply: &Reply) -> bool {
    header(reply, "content-type").is_some_and(|t| t.starts_with("text/html")) && reply.body.contains("<html")
}
