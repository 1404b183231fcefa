//! The dashboard in a real headless Chromium, on the rossmann lake of
//! `dashboard.rs`: each role logs in through the login form and sees its
//! pages and not the others'; a store user's attempts at another store by
//! URL, by CSV download and by the API (from the page's own origin, with
//! its cookie) fail; the session cookie is HttpOnly and SameSite=Strict; an
//! admin rolls back from the page and the champion and the decision log
//! change; an admin creates an API token that works and is shown once;
//! logout ends the session; no password or token reaches the server log.
//! Screenshots of every page are saved (target/screenshots/dashboard-*.png).

use std::time::Duration;

use crate::browser::Browser;
use crate::dashboard::{Dashboard, USERS, password};
use crate::server_util::request;

struct Visit<'a> {
    browser: &'a Browser,
    base: String,
}

impl Visit<'_> {
    fn goto(&self, path: &str) {
        self.browser.goto(&format!("{}{path}", self.base));
    }

    fn path(&self) -> String {
        self.browser
            .current_url()
            .trim_start_matches(&self.base)
            .to_string()
    }

    /// Logs in through the form the browser was sent to.
    fn log_in(&self, user: &str) {
        let b = self.browser;
        b.wait_for("#user", Duration::from_secs(10)).send_keys(user);
        b.find("#password").send_keys(password(user));
        b.find("#submit").click();
        b.wait_for("#who", Duration::from_secs(10));
        assert_eq!(b.find("#who").text(), user);
    }

    fn log_out(&self) {
        self.browser.find("#logout").click();
        let message = self.browser.wait_for("#message", Duration::from_secs(10));
        assert_eq!(message.text(), "You are logged out.");
    }

    /// The status of a same-origin request made by the page (with its cookie).
    fn fetch_status(&self, path: &str) -> u64 {
        let script =
            "var x = new XMLHttpRequest(); x.open('GET', arguments[0], false); x.send(); return x.status;";
        self.browser
            .execute(script, &[serde_json::json!(path)])
            .as_u64()
            .unwrap()
    }

    fn has_link(&self, href: &str) -> bool {
        self.browser.try_find(&format!("nav a[href='{href}']")).is_some()
    }

    fn shot(&self, name: &str) {
        let path = self.browser.screenshot(&format!("dashboard-{name}"));
        assert!(
            std::fs::metadata(&path).unwrap().len() > 10_000,
            "{}",
            path.display()
        );
    }
}

#[test]
fn each_role_in_a_browser_and_an_admin_rolls_back_from_the_page() {
    let d = Dashboard::start();
    let browser = Browser::start();
    let v = Visit {
        browser: &browser,
        base: format!("http://{}", d.server.addr),
    };

    // A store user asks for their page, logs in, and is brought back to it.
    v.goto("/stores/102");
    assert!(v.path().starts_with("/login?next="), "{}", v.path());
    v.shot("login");
    v.log_in("maria");
    assert_eq!(v.path(), "/stores/102");
    assert_eq!(browser.find("#store").text(), "102");
    assert!(browser.find("#data-day").text().starts_with("2015-07-31"));
    assert_eq!(browser.find_all("#forecast tbody tr").len(), 14);
    assert!(
        browser.try_find("#chart svg polygon.band").is_some(),
        "the interval band is drawn"
    );
    assert!(!browser.find_all("#chart svg polyline.actual").is_empty());
    v.shot("store-102-as-store-user");
    let cookies = browser.cookies();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "salescast_session")
        .expect("the session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(
        browser.execute("return document.cookie;", &[]),
        "",
        "scripts cannot read the session"
    );
    assert!(!v.has_link("/chain") && !v.has_link("/model") && !v.has_link("/admin"));
    // Another store: by URL, by CSV, by the API; the chain: refused.
    v.goto("/stores/1020");
    assert!(
        browser.find("h1").text().starts_with("404"),
        "{}",
        browser.source()
    );
    v.shot("other-store-refused");
    assert_eq!(v.fetch_status("/stores/1020/forecast.csv"), 404);
    assert_eq!(v.fetch_status("/v1/forecasts?Store=1020"), 404);
    assert_eq!(v.fetch_status("/stores/102/forecast.csv"), 200);
    assert_eq!(v.fetch_status("/v1/forecasts?Store=102"), 200);
    v.goto("/chain");
    assert!(browser.find("h1").text().starts_with("403"));
    v.goto("/stores/102");
    v.log_out();
    v.goto("/stores/102");
    assert!(
        v.path().starts_with("/login"),
        "the session has ended: {}",
        v.path()
    );

    // A manager: the chain overview, sorted by forecast error by a click.
    v.log_in("mo");
    assert_eq!(v.path(), "/stores/102");
    v.goto("/");
    assert_eq!(v.path(), "/chain");
    assert_eq!(browser.find_all("#stores tbody tr").len(), 100);
    v.shot("chain-as-manager");
    browser.find("#sort-error").click();
    browser.wait_for("#sort-error", Duration::from_secs(10));
    assert!(v.path().contains("sort=error&dir=desc"), "{}", v.path());
    let errors: Vec<f64> = browser
        .find_all("#stores tbody tr td:last-child")
        .iter()
        .map(|td| td.text().trim_end_matches('%').parse().unwrap())
        .collect();
    assert!(errors.windows(2).all(|w| w[0] >= w[1]), "{errors:?}");
    assert!(v.has_link("/chain") && !v.has_link("/model") && !v.has_link("/admin"));
    v.log_out();

    // An analyst: the model page, with the champion.
    v.goto("/model");
    v.log_in("ann");
    assert_eq!(v.path(), "/model");
    let listing = d.place.registry_cmd(&["models", "list"]).expect_code(0).json();
    let champion = listing["champion"].as_str().unwrap().to_string();
    assert_eq!(browser.find("#champion").text(), champion);
    assert!(browser.find_all("#horizons tbody tr").len() >= 14);
    v.shot("model-as-analyst");
    assert!(v.has_link("/model") && !v.has_link("/admin"));
    v.log_out();

    // An admin rolls back from the page, with a reason.
    v.goto("/admin");
    v.log_in("root");
    v.shot("admin");
    let target = browser
        .find("#rollback-to")
        .prop("value")
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(target, champion);
    browser
        .find("#rollback-reason")
        .send_keys("store 102's forecasts doubled overnight");
    browser.find("#rollback-submit").click();
    let message = browser.wait_for("#message", Duration::from_secs(30)).text();
    assert!(message.starts_with("Rolled back"), "{message}");
    let decisions = d.place.decisions();
    let last = decisions.last().unwrap();
    assert_eq!(last["kind"], "rolled_back");
    assert_eq!(last["actor"], "root");
    assert_eq!(last["reason"], "store 102's forecasts doubled overnight");
    assert_eq!(last["champion_after"], target.as_str());
    assert_eq!(browser.find("#current-champion").text(), target);
    v.goto("/model");
    assert_eq!(browser.find("#champion").text(), target);
    assert_eq!(browser.find("#decisions tbody tr td.actor").text(), "root");
    v.shot("model-after-rollback");

    // An API token, shown once, works as its user.
    v.goto("/admin");
    browser.find("#token-label").send_keys("nightly export");
    browser.find("#add-token-submit").click();
    let token = browser.wait_for("#token", Duration::from_secs(10)).text();
    assert!(token.starts_with("sct_"), "{token}");
    v.shot("token-created");
    let bearer = [("Authorization".to_string(), format!("Bearer {token}"))];
    let reply = request(&d.server.addr, "GET", "/v1/champion", None, &bearer);
    assert_eq!(reply.status, 200, "{}", reply.body);
    v.goto("/admin");
    assert!(!browser.source().contains(&token), "the token is not shown again");
    v.log_out();

    let log = d.server.log();
    for (_, _, secret) in USERS {
        assert!(!log.contains(secret), "a password in the server log");
    }
    assert!(!log.contains(&token), "the token in the server log");
}
