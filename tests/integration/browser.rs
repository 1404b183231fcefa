//! The browser-test harness: a real headless Chromium driven through
//! chromedriver with the W3C WebDriver protocol (HTTP and JSON, spoken with
//! [`request`]), so dashboard tests click, type and read what a user would.
//! `scripts/test.sh` installs both and sets `TEST_CHROMEDRIVER` and
//! `TEST_CHROMIUM`; without them a browser test fails, it never skips.
//! The harness's own tests are in `browser/harness.rs`.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server_util::request;

mod harness;

/// The key of an element reference in the W3C protocol.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session; quits the session and kills chromedriver
/// (and the browser with it) on drop.
pub struct Browser {
    driver: Child,
    /// chromedriver's `127.0.0.1:port`.
    addr: String,
    session: String,
    /// The browser profile and chromedriver's log.
    dir: tempfile::TempDir,
}

/// An element of the page, found by [`Browser::find`] and its kin.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

/// An error answered by chromedriver (`value.error`, `value.message`).
struct WebDriverError {
    error: String,
    message: String,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session.
    pub fn start() -> Self {
        let driver_bin = env_path("TEST_CHROMEDRIVER");
        let chromium = env_path("TEST_CHROMIUM");
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        let log = dir.path().join("chromedriver.log");
        // A free port can be taken between our probe and chromedriver's bind: retry.
        let mut attempt = 0;
        let (driver, addr) = loop {
            attempt += 1;
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut driver = spawn_driver(&driver_bin, port, &log);
            let addr = format!("127.0.0.1:{port}");
            if wait_ready(&mut driver, &addr) {
                break (driver, addr);
            }
            let _ = driver.kill();
            let _ = driver.wait();
            assert!(
                attempt < 3,
                "chromedriver ({}) did not become ready on {addr}:\n{}",
                driver_bin.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 30_000, "script": 30_000, "implicit": 0},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let mut browser = Self {
            driver,
            addr,
            session: String::new(),
            dir,
        };
        let value = browser
            .send("POST", "/session", Some(capabilities))
            .unwrap_or_else(|e| {
                panic!(
                    "new session with {}: {}: {}\n{}",
                    chromium.display(),
                    e.error,
                    e.message,
                    browser.driver_log()
                )
            });
        browser.session = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {value}"))
            .to_string();
        browser
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", json!({"url": url}));
    }

    pub fn current_url(&self) -> String {
        string(self.command("GET", "/url", Value::Null))
    }

    pub fn title(&self) -> String {
        string(self.command("GET", "/title", Value::Null))
    }

    /// The page's HTML as it is now (after scripts ran).
    pub fn source(&self) -> String {
        string(self.command("GET", "/source", Value::Null))
    }

    /// The first element matching `css`; panics if there is none.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element matches {css:?} on {}", self.current_url()))
    }

    /// The first element matching `css`, if any.
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let body = json!({"using": "css selector", "value": css});
        match self.session_send("POST", "/element", body) {
            Ok(value) => Some(self.element(&value)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("find {css:?}: {}: {}", e.error, e.message),
        }
    }

    /// Every element matching `css`, in document order.
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let body = json!({"using": "css selector", "value": css});
        match self.command("POST", "/elements", body) {
            Value::Array(found) => found.iter().map(|v| self.element(v)).collect(),
            other => panic!("find_all {css:?}: not a list: {other}"),
        }
    }

    /// Polls for an element matching `css` until `timeout`; panics then.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Element<'_> {
        let started = Instant::now();
        loop {
            if let Some(found) = self.try_find(css) {
                return found;
            }
            assert!(
                started.elapsed() < timeout,
                "no element matches {css:?} on {} after {timeout:?}",
                self.current_url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `script` (a function body: `arguments[i]` are `args`, `return`
    /// gives the result) in the page and returns its result.
    pub fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.command("POST", "/execute/sync", json!({"script": script, "args": args}))
    }

    /// Saves a PNG of the viewport to `target/screenshots/<name>.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = string(self.command("GET", "/screenshot", Value::Null));
        let png = decode_base64(&encoded).unwrap_or_else(|| panic!("screenshot {name}: not base64"));
        // The target directory the tests were built in (CARGO_TARGET_DIR or target/).
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.parent().unwrap_or(tmp).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// The page's cookies as WebDriver describes them: `name`, `value`,
    /// `httpOnly`, `secure`, `sameSite`, `path`, `domain`, `expiry`.
    pub fn cookies(&self) -> Vec<Value> {
        match self.command("GET", "/cookie", Value::Null) {
            Value::Array(cookies) => cookies,
            other => panic!("cookies: not a list: {other}"),
        }
    }

    /// Deletes every cookie of the current page's domain.
    pub fn delete_cookies(&self) {
        self.command("DELETE", "/cookie", Value::Null);
    }

    /// chromedriver's log so far, for failure messages.
    pub fn driver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    fn element(&self, value: &Value) -> Element<'_> {
        let id = value[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element reference: {value}"));
        Element {
            browser: self,
            id: id.to_string(),
        }
    }

    /// A command of this session; a WebDriver error panics with the command.
    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        self.session_send(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {}: {}", e.error, e.message))
    }

    fn session_send(&self, method: &str, path: &str, body: Value) -> Result<Value, WebDriverError> {
        let body = (!body.is_null()).then_some(body);
        self.send(method, &format!("/session/{}{path}", self.session), body)
    }

    /// One WebDriver call: its `value`, or its error.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WebDriverError> {
        // A POST always carries a JSON object, even an empty one.
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        let reply = request(
            &self.addr,
            method,
            path,
            body.map(|b| b.to_string()).as_deref(),
            &[],
        );
        let json: Value = serde_json::from_str(&reply.body).unwrap_or_else(|e| {
            panic!(
                "WebDriver {method} {path}: {} not JSON ({e}): {}",
                reply.status, reply.body
            )
        });
        let value = json["value"].clone();
        match value["error"].as_str() {
            Some(error) => Err(WebDriverError {
                error: error.to_string(),
                message: value["message"].as_str().unwrap_or_default().to_string(),
            }),
            None => Ok(value),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort, and no panic (a drop while a test panics would abort):
        // quit the session so Chromium exits, then kill chromedriver.
        if !self.session.is_empty() {
            quit_session(&self.addr, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Element<'_> {
    /// The rendered text (as a user sees it: hidden text left out).
    pub fn text(&self) -> String {
        string(self.command("GET", "/text", Value::Null))
    }

    /// The HTML attribute `name`, if set: as written in the page (an
    /// input's `value` attribute stays its default; see [`Element::prop`]).
    pub fn attr(&self, name: &str) -> Option<String> {
        match self.command("GET", &format!("/attribute/{name}"), Value::Null) {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }
    }

    /// The DOM property `name` (an input's current `value`, `checked`...);
    /// null if it has none.
    pub fn prop(&self, name: &str) -> Value {
        self.command("GET", &format!("/property/{name}"), Value::Null)
    }

    pub fn click(&self) {
        self.command("POST", "/click", Value::Null);
    }

    /// Types `text` into the element (appended to what it holds).
    pub fn send_keys(&self, text: &str) {
        self.command("POST", "/value", json!({"text": text}));
    }

    pub fn clear(&self) {
        self.command("POST", "/clear", Value::Null);
    }

    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        self.browser
            .command(method, &format!("/element/{}{path}", self.id), body)
    }
}

/// The path in the environment variable `name`; panics when unset, since a
/// browser test must fail rather than skip.
fn env_path(name: &str) -> PathBuf {
    match std::env::var_os(name) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "{name} is not set: run the tests through `bash scripts/test.sh`, which installs \
             chromium and chromedriver (Debian: apt-get install chromium chromium-driver) and sets \
             TEST_CHROMEDRIVER and TEST_CHROMIUM"
        ),
    }
}

fn spawn_driver(bin: &Path, port: u16, log: &Path) -> Child {
    Command::new(bin)
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()))
}

/// Polls `/status` until chromedriver is ready (20 s at most); false if it
/// exited or never answered.
fn wait_ready(driver: &mut Child, addr: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if driver.try_wait().ok().flatten().is_some() {
            return false;
        }
        if TcpStream::connect(addr).is_ok() {
            let reply = request(addr, "GET", "/status", None, &[]);
            let ready = serde_json::from_str::<Value>(&reply.body)
                .is_ok_and(|json| json["value"]["ready"] == Value::Bool(true));
            if ready {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `DELETE /session/<id>` without [`request`]'s panics; waits (10 s at most)
/// for the answer, which comes once Chromium has quit.
fn quit_session(addr: &str, session: &str) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let call = format!("DELETE /session/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
    if stream.write_all(call.as_bytes()).is_ok() {
        let _ = stream.read(&mut [0u8; 1024]);
    }
}

fn string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => panic!("not a string: {other}"),
    }
}

/// Standard base64 (with padding and no line breaks, as WebDriver sends
/// screenshots); None on any other byte.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let sextet = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let text = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut bits = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            bits |= sextet(c)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}
