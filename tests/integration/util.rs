//! Small helpers shared by the integration tests: running the real binary (the
//! one command-line builder), the config fixtures, temporary folders, and the
//! shared datasets beside the repo.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Fails the test, showing the output, unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked:\n{}",
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// The JSON documents printed one after another (`retrain --predict --json`).
    pub fn json_documents(&self) -> Vec<serde_json::Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not a stream of JSON documents ({e}):\n{}", self.stdout))
    }
}

/// The binary under test, with no `SALESCAST_*` variables from the caller's environment.
pub fn salescast(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_salescast"));
    cmd.current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("SALESCAST_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs the binary in `dir` with `args`.
pub fn run(dir: &Path, args: &[&str]) -> Outcome {
    run_cmd(salescast(dir).args(args))
}

pub fn run_cmd(cmd: &mut Command) -> Outcome {
    let out = cmd.output().expect("the salescast binary runs");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A file of the shared datasets (`../shared/data/` beside the repo).
pub fn shared_data(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    assert!(
        path.is_file(),
        "shared dataset {} is missing: the tests need ../shared/ beside the repo",
        path.display()
    );
    path
}

pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// [`snapshot`] of `root/under`, named relative to `root`: to compare the
/// same files of two copies.
pub fn relative_snapshot(root: &Path, under: &str) -> Vec<(PathBuf, Vec<u8>)> {
    snapshot(&root.join(under))
        .into_iter()
        .map(|(p, bytes)| (p.strip_prefix(root).unwrap().to_path_buf(), bytes))
        .collect()
}

/// Every file under `dir`, with its content, sorted: a snapshot to compare.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Runs a Python snippet with the interpreter the test command set up.
pub fn python(code: &str, args: &[&str]) -> String {
    let interpreter = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&interpreter)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {interpreter}: {e}"));
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An empty folder `run-NAME-PID` of this test run under
/// CARGO_TARGET_TMPDIR, for what a test run prepares once and keeps in a
/// static (a TempDir held in a static is never removed); one of an earlier
/// run with the same pid is emptied first. The first call of a run removes
/// the folders of runs that have ended (`remove_ended_runs`).
pub(crate) fn run_folder(name: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| remove_ended_runs(Path::new(env!("CARGO_TARGET_TMPDIR"))));
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{RUN_PREFIX}{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What names a `run_folder` (and nothing else under CARGO_TARGET_TMPDIR).
const RUN_PREFIX: &str = "run-";

/// Removes the `run-NAME-PID` folders under `tmp` whose process is gone (no
/// `/proc/PID`): what earlier test runs kept (a rossmann lake, the build
/// cache's release binary: hundreds of MB a run). A live run's folders,
/// this one's included, are left alone, as is every other name.
fn remove_ended_runs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    // Without /proc (not Linux) no run can be told ended.
    if !Path::new("/proc/self").exists() {
        return;
    }
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RUN_PREFIX))
            .and_then(|n| n.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ended = !Path::new("/proc").join(pid.to_string()).exists();
        if ended && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A lake ingested once per test run from the shared rossmann data (sales and
/// the store table), for tests that only read it. Copy it before changing it.
pub fn rossmann_lake() -> &'static Path {
    static LAKE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = run_folder("rossmann");
        let lake = dir.join("lake");
        let stores = format!("store={}", s(&shared_data("rossmann/store.csv")));
        rossmann(
            &dir,
            &lake,
            &[
                "ingest",
                "--input",
                s(&shared_data("rossmann/train.csv")),
                "--attributes",
                &stores,
            ],
        )
        .expect_code(0);
        lake
    })
}

/// Copies a folder tree (a lake) so a test can change it.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The default candidates (gradient-boosted trees among them) on a shorter
/// window with fewer boosting rounds, to keep debug-build tests quick.
pub const QUICK: &str = "[window]\nhistory_days = 400\n[training.gbdt]\nmax_rounds = 150\n";
/// The quickest real training: the seasonal-naive rule and the elastic net.
pub const LINEAR: &str =
    "[window]\nhistory_days = 400\n[training]\ncandidates = [\"seasonal_naive\", \"elastic_net\"]\n";

/// The rossmann example config with `extra` TOML after it, written into `dir`
/// (one file per distinct `extra`).
pub fn rossmann_config(dir: &Path, extra: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    extra.hash(&mut hasher);
    let base = std::fs::read_to_string(repo_file("examples/rossmann.toml")).unwrap();
    let path = dir.join(format!("salescast-{:016x}.toml", hasher.finish()));
    std::fs::write(&path, format!("{base}\n{extra}\n")).unwrap();
    path
}

/// A configuration's text with `data.aggregate = "sum"` (input rows are
/// events, summed per day and series at ingest).
pub fn summing(text: &str) -> String {
    let summing = text.replacen("[data]\n", "[data]\naggregate = \"sum\"\n", 1);
    assert_ne!(summing, text, "the config has a [data] table");
    summing
}

/// The rossmann example config with `extra`, without the `SchoolHoliday`
/// covariate (a covariate dropped since the champion was trained).
pub fn dropped_config(dir: &Path, extra: &str) -> PathBuf {
    let full = rossmann_config(dir, extra);
    let text = std::fs::read_to_string(&full).unwrap();
    let dropped = text.replace(
        r#"covariates = ["Promo", "StateHoliday", "SchoolHoliday", "Open"]"#,
        r#"covariates = ["Promo", "StateHoliday", "Open"]"#,
    );
    assert_ne!(dropped, text, "the example's covariates line changed");
    // Named after the full one, so each `extra` has its own file.
    let config = full.with_extension("dropped.toml");
    std::fs::write(&config, dropped).unwrap();
    config
}

/// The one command-line builder of the tests: the global flags of a run
/// (config, lake, registry, `--json`, backend flags), then the command.
#[derive(Debug, Clone)]
pub struct Cli {
    global: Vec<String>,
}

impl Cli {
    /// `--config CONFIG --lake LAKE`.
    pub fn new(config: &Path, lake: &str) -> Self {
        Self {
            global: vec!["--config".into(), s(config).into(), "--lake".into(), lake.into()],
        }
    }

    pub fn registry(mut self, uri: &str) -> Self {
        self.global.extend(["--registry".into(), uri.into()]);
        self
    }

    pub fn json(mut self) -> Self {
        self.global.push("--json".into());
        self
    }

    /// Backend flags such as `--s3-endpoint URL`.
    pub fn flags(mut self, flags: &[String]) -> Self {
        self.global.extend(flags.iter().cloned());
        self
    }

    /// The binary in `dir` with the global flags and `args`, not yet run.
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = salescast(dir);
        cmd.args(&self.global).args(args);
        cmd
    }

    pub fn run(&self, dir: &Path, args: &[&str]) -> Outcome {
        run_cmd(&mut self.command(dir, args))
    }
}

/// Runs the binary with the rossmann example config and `lake`.
pub fn rossmann(dir: &Path, lake: &Path, args: &[&str]) -> Outcome {
    Cli::new(&repo_file("examples/rossmann.toml"), s(lake)).run(dir, args)
}

/// The handle of the test binary's one tokio runtime (built on first use, as
/// the CLI builds its own), for the tests that open stores themselves.
pub fn handle() -> &'static tokio::runtime::Handle {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the test runtime starts")
        })
        .handle()
}

/// The local S3 server that scripts/test.sh started. S3 tests fail (never
/// skip) without it.
pub fn s3_endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("TEST_S3_ENDPOINT is not set: run the tests with scripts/test.sh, which starts the local S3 server")
    })
}

/// A new, empty bucket on the local S3 server, named after `purpose`.
pub fn s3_bucket(purpose: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("sc-{}-{}-{n}", purpose.replace('_', "-"), std::process::id());
    python(
        "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1').create_bucket(Bucket=sys.argv[2])",
        &[&s3_endpoint(), &name],
    );
    name
}

/// Runs each named test function (taking a `Backend`) once per storage
/// backend: `mod local` and `mod s3` of the calling module.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod local {
            $(#[test] fn $test() { super::$test(super::Backend::Local) })*
        }
        mod s3 {
            $(#[test] fn $test() { super::$test(super::Backend::S3) })*
        }
    };
}
pub(crate) use on_every_backend;
