//! The test helpers for `salescast serve`: a running server (started on a
//! free port, its log collected, a session kept after a login) and a minimal
//! HTTP/1.1 client, so the tests need no HTTP library.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::Cli;

/// A running `salescast serve`, its stderr collected; killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// The session of the last successful [`Server::login`], sent with every call.
    session: Mutex<Option<Session>>,
}

/// A logged-in session: the cookie and the CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    /// The whole Set-Cookie header the login answered with.
    pub set_cookie: String,
}

impl Server {
    /// Starts `serve` on a free port and waits for it to listen.
    pub fn start(cli: &Cli, dir: &Path) -> Self {
        let mut child = cli
            .command(dir, &["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve did not listen:\n{}", log.lock().unwrap()));
        Self {
            child,
            addr,
            log,
            reader: Some(reader),
            session: Mutex::new(None),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// One request with the current session (if any); (status, body).
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let session = self.session.lock().unwrap().clone();
        self.call_as(session.as_ref(), method, path, body)
    }

    /// One request with `session` (its cookie, and its CSRF token on a POST).
    pub fn call_as(
        &self,
        session: Option<&Session>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut headers = Vec::new();
        if let Some(s) = session {
            headers.push(("Cookie".to_string(), format!("salescast_session={}", s.cookie)));
            headers.push(("X-CSRF-Token".to_string(), s.csrf.clone()));
        }
        let reply = request(&self.addr, method, path, body, &headers);
        (reply.status, reply.body)
    }

    /// Sends `session` with the next calls.
    pub fn use_session(&self, session: Session) {
        *self.session.lock().unwrap() = Some(session);
    }

    /// `POST /login`; on success the session is kept for the next calls and returned.
    pub fn login(&self, user: &str, password: &str) -> Result<Session, (u16, String)> {
        let body = serde_json::json!({"user": user, "password": password}).to_string();
        let reply = request(&self.addr, "POST", "/login", Some(&body), &[]);
        if reply.status != 200 {
            return Err((reply.status, reply.body));
        }
        let json: Value = serde_json::from_str(&reply.body).unwrap();
        let set_cookie = reply
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.clone())
            .expect("the login sets a cookie");
        let cookie = set_cookie
            .split(';')
            .next()
            .and_then(|kv| kv.strip_prefix("salescast_session="))
            .expect("a salescast_session cookie")
            .to_string();
        let session = Session {
            cookie,
            csrf: json["csrf_token"].as_str().unwrap().to_string(),
            set_cookie,
        };
        *self.session.lock().unwrap() = Some(session.clone());
        Ok(session)
    }

    pub fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.call("GET", path, None);
        let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        (status, json)
    }

    /// Polls `path` until `done` holds of its JSON, or fails after `limit`.
    pub fn wait_for(&self, path: &str, limit: Duration, done: impl Fn(u16, &Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (status, json) = self.get_json(path);
            if done(status, &json) {
                return json;
            }
            assert!(
                started.elapsed() < limit,
                "{path} did not get there in {limit:?}: {status} {json}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM.
    pub fn signal_term(&self) {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
    }

    /// Waits for the exit (20 s at most): its status and the whole log.
    pub fn wait(mut self) -> (std::process::ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return (status, self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "serve did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the whole log once it exited.
    pub fn wait_log(self) -> String {
        self.signal_term();
        self.wait().1
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.signal_term();
        self.wait().0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What [`request`] got back.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A minimal HTTP/1.1 client: one request (with extra headers) per
/// connection; the body is JSON unless a Content-Type header says otherwise.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(String, String)],
) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.unwrap_or("");
    let mut extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        extra.push_str("Content-Type: application/json\r\n");
    }
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let raw = read_reply(&mut stream);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    Reply {
        status,
        headers,
        body: if chunked { unchunk(rest) } else { rest.to_string() },
    }
}

/// The reply's bytes: up to its Content-Length when it has one (chromedriver
/// keeps the connection open despite `Connection: close`), else to the close.
/// Not for HEAD, whose Content-Length announces a body that never comes.
fn read_reply(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head.lines().find_map(|l| {
                l.strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse::<usize>().ok())
            });
            if let Some(length) = length {
                while raw.len() < end + 4 + length {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => raw.extend_from_slice(&buf[..n]),
                    }
                }
                return raw;
            }
            let _ = stream.read_to_end(&mut raw);
            return raw;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
}

fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}
