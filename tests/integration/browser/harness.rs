//! The browser harness's own tests: a page served here (a form, a script, a
//! cookie set by the server and one by the page) driven through [`Browser`],
//! and the base64 decoder of the screenshots.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Browser, Element, decode_base64};

/// A page server for the harness's own test: answers every GET of `/` with
/// `page` and a server-set HttpOnly cookie, anything else with 404.
struct PageServer {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PageServer {
    fn start(page: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve_one(stream, page);
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_one(mut stream: TcpStream, page: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let reply = if head.starts_with("GET / ") {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
             Set-Cookie: server_session=s3cr3t; Path=/; HttpOnly; SameSite=Strict\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    };
    let _ = stream.write_all(reply.as_bytes());
}

const HARNESS_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Harness page</title>
<style>
  body { font-family: sans-serif; margin: 2em; background: #f4f6fb; color: #111827; }
  h1 { color: #1d4ed8; }
  input, button { font-size: 1.2em; padding: 0.3em 0.6em; }
  #out { margin-top: 1em; padding: 1em; border: 2px solid #1d4ed8; background: #fff; font-size: 1.4em; }
</style></head>
<body>
  <h1>Browser harness</h1>
  <form onsubmit="return false">
    <label>Name <input id="name" name="who" value="draft"></label>
    <button id="greet" type="button">Greet</button>
  </form>
  <p id="out">nobody yet</p>
  <ul><li class="item">one</li><li class="item">two</li><li class="item" hidden>three</li></ul>
  <script>
    document.getElementById('greet').addEventListener('click', () => {
      const who = document.getElementById('name').value;
      document.getElementById('out').textContent = 'Hello, ' + who + '!';
      document.cookie = 'greeted=' + encodeURIComponent(who) + '; path=/; SameSite=Lax';
      setTimeout(() => {
        const late = document.createElement('p');
        late.id = 'late';
        late.textContent = 'arrived later';
        document.body.appendChild(late);
      }, 300);
    });
  </script>
</body></html>
"#;

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("it panics");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn browser_drives_a_real_page() {
    let server = PageServer::start(HARNESS_PAGE);
    let browser = Browser::start();
    let url = server.url();
    browser.goto(&url);
    assert_eq!(browser.current_url(), url);
    assert_eq!(browser.title(), "Harness page");
    assert!(browser.source().contains("<h1>Browser harness</h1>"));

    // Type, click, and read what the page's script wrote.
    let input = browser.find("#name");
    assert_eq!(input.attr("name").as_deref(), Some("who"));
    assert_eq!(input.attr("value").as_deref(), Some("draft"));
    assert_eq!(input.attr("placeholder"), None);
    input.clear();
    input.send_keys("Ada Lovelace");
    assert_eq!(input.prop("value"), json!("Ada Lovelace"));
    assert_eq!(
        input.attr("value").as_deref(),
        Some("draft"),
        "the attribute keeps the default"
    );
    assert_eq!(input.prop("placeholder"), json!(""));
    assert_eq!(browser.find("#out").text(), "nobody yet");
    browser.find("#greet").click();
    assert_eq!(browser.find("#out").text(), "Hello, Ada Lovelace!");
    assert!(
        browser.try_find("#late").is_none(),
        "the late element comes 300 ms after the click"
    );
    assert_eq!(
        browser.wait_for("#late", Duration::from_secs(10)).text(),
        "arrived later"
    );

    // find_all keeps document order; text() leaves hidden text out.
    let items: Vec<String> = browser.find_all("li.item").iter().map(Element::text).collect();
    assert_eq!(items, ["one", "two", ""]);
    assert!(browser.find_all(".absent").is_empty());
    assert!(browser.try_find(".absent").is_none());

    // Scripts get arguments and return JSON; the page's script sees only its
    // own cookie, WebDriver sees both with their flags.
    assert_eq!(
        browser.execute("return arguments[0] + arguments[1];", &[json!(2), json!(3)]),
        json!(5)
    );
    let visible = browser.execute("return document.cookie;", &[]);
    assert_eq!(visible, json!("greeted=Ada%20Lovelace"));
    let cookies = browser.cookies();
    let cookie = |name: &str| {
        cookies
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no cookie {name} in {cookies:?}"))
            .clone()
    };
    let greeted = cookie("greeted");
    assert_eq!(greeted["value"], "Ada%20Lovelace");
    assert_eq!(greeted["httpOnly"], false);
    assert_eq!(greeted["sameSite"], "Lax");
    let session = cookie("server_session");
    assert_eq!(session["value"], "s3cr3t");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(session["secure"], false);

    // The screenshot is a real PNG of the rendered page.
    let shot = browser.screenshot("browser_harness");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        shot.display()
    );
    assert!(
        png.len() > 1024,
        "{} has only {} bytes",
        shot.display(),
        png.len()
    );

    browser.delete_cookies();
    assert_eq!(browser.cookies(), Vec::<Value>::new());

    // Failures name what was asked and where.
    let missing = panic_message(|| {
        browser.find("#absent");
    });
    assert!(missing.contains("#absent") && missing.contains(&url), "{missing}");
    let thrown = panic_message(|| {
        browser.execute("throw new Error('boom');", &[]);
    });
    assert!(
        thrown.contains("/execute/sync") && thrown.contains("javascript error") && thrown.contains("boom"),
        "{thrown}"
    );
}

#[test]
fn base64_decodes_what_webdriver_sends() {
    assert_eq!(decode_base64("").unwrap(), b"");
    assert_eq!(decode_base64("Zg==").unwrap(), b"f");
    assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
    assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
    assert_eq!(decode_base64("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
    assert_eq!(decode_base64("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    assert_eq!(decode_base64("Zm9v!"), None);
    assert_eq!(decode_base64("Z"), None);
}
