//! The CI/CD wiring: each lint of `.ci/lint` fails on a broken copy; the
//! exact command lines of `buildspec.yml` and of the retrain workflow run the
//! daily job against the local S3 server with the environment the schedule
//! (or a person) sets. The harness (the release, a CodeBuild-like run of the
//! buildspec) is shared with `daily_pipeline`, which runs the whole daily
//! pipeline and checks the template's IAM policy against the requests runs send.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::daily_pipeline::{fresh_s3_lake, manifest_of};
use crate::retrain::{Backend, Place};
use crate::util::{LINEAR, copy_tree, python, repo_file, run_folder, s, s3_bucket, s3_endpoint, tempdir};

/// A YAML file as JSON (CloudFormation's `!Tag value` becomes `{"Tag": value}`).
pub(crate) fn yaml(path: &Path) -> Value {
    let code = "import json, sys, yaml
class Loader(yaml.SafeLoader): pass
def tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode): value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode): value = loader.construct_sequence(node, deep=True)
    else: value = loader.construct_mapping(node, deep=True)
    return {suffix: value}
Loader.add_multi_constructor('!', tag)
print(json.dumps(yaml.load(open(sys.argv[1]), Loader=Loader)))";
    serde_json::from_str(&python(code, &[s(path)])).unwrap()
}

fn venv_bin() -> PathBuf {
    let python = std::env::var("TEST_PYTHON").expect("TEST_PYTHON: run the tests with scripts/test.sh");
    Path::new(&python).parent().unwrap().to_path_buf()
}

/// The CI/CD files of the repository, copied into a fresh folder.
fn ci_files_copy() -> tempfile::TempDir {
    let dir = tempdir();
    for file in ["buildspec.yml", "buildspec-batch.yml", "Dockerfile"] {
        std::fs::copy(repo_file(file), dir.path().join(file)).unwrap();
    }
    copy_tree(
        &repo_file(".github/workflows"),
        &dir.path().join(".github/workflows"),
    );
    copy_tree(&repo_file("pipelines"), &dir.path().join("pipelines"));
    dir
}

fn lint(root: &Path, lints: &str) -> (bool, String) {
    let out = Command::new("bash")
        .arg(repo_file(".ci/lint"))
        .arg(root)
        .env("LINT_VENV", venv_bin().parent().unwrap())
        .env("LINTS", lints)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn every_lint_fails_on_a_broken_copy() {
    let (passed, output) = lint(ci_files_copy().path(), "");
    assert!(passed, "an unbroken copy must pass:\n{output}");
    // After one file is broken, the lints that read it: the others read
    // the same files as on the unbroken copy, which passed. The files each
    // lint reads are its arguments in .ci/lint: keep this map with them.
    let reading = |file: &str| match file {
        f if f.starts_with("pipelines/") => "cfn-lint yamllint",
        f if f.starts_with(".github/workflows/") => "actionlint yamllint",
        f if f.starts_with("buildspec") => "yamllint buildspec-schema batch-graph",
        "Dockerfile" => "hadolint",
        other => panic!("which lints read {other}?"),
    };

    let breakages: [(&str, &str, &str, &str); 10] = [
        (
            "cfn-lint",
            "pipelines/salescast.yml",
            "Type: AWS::S3::Bucket",
            "Type: AWS::S3::Bukket",
        ),
        (
            "actionlint",
            ".github/workflows/ci.yml",
            "    runs-on: ubuntu-24.04\n",
            "",
        ),
        ("yamllint", "buildspec.yml", "MODE: daily", "MODE: daily   "),
        (
            "buildspec-schema",
            "buildspec.yml",
            "    commands:\n      - bash pipelines/daily-job run",
            "    command:\n      - bash pipelines/daily-job run",
        ),
        // The web tier's HTTPS listener without its certificate.
        (
            "cfn-lint",
            "pipelines/web.yml",
            "      Certificates:\n        - CertificateArn: !Ref CertificateArn\n",
            "",
        ),
        // The image would run as root (hadolint DL3002, a warning).
        ("hadolint", "Dockerfile", "USER 65532:65532", "USER 0"),
        (
            "yamllint",
            "buildspec-batch.yml",
            "fast-fail: true",
            "fast-fail: true  ",
        ),
        // A misspelt key of a graph's build (CodeBuild would ignore the order).
        (
            "buildspec-schema",
            "buildspec-batch.yml",
            "      depend-on:\n        - ingest\n",
            "      depends-on:\n        - ingest\n",
        ),
        // The fan-in waits for a build the graph does not have.
        (
            "batch-graph",
            "buildspec-batch.yml",
            "        - predict_2\n",
            "        - predict_3\n",
        ),
        // retrain after the fan-in, which is after retrain: a cycle.
        (
            "batch-graph",
            "buildspec-batch.yml",
            "      depend-on:\n        - ingest\n",
            "      depend-on:\n        - predict_fan_in\n",
        ),
    ];
    for (linter, file, from, to) in breakages {
        let copy = ci_files_copy();
        replace_in(&copy.path().join(file), from, to);
        let lints = reading(file);
        assert!(lints.split(' ').any(|l| l == linter), "{linter} reads {file}");
        let (passed, output) = lint(copy.path(), lints);
        assert!(!passed, "{linter} let a broken {file} pass:\n{output}");
        assert!(
            output.contains(&format!("lint failed: {linter}\n")),
            "only {linter} should fail on the broken {file}:\n{output}"
        );
    }
}

/// The AWS CLI of the test venv, as the build's container runs it.
pub(crate) fn aws(args: &[&str]) -> String {
    let out = Command::new(venv_bin().join("aws"))
        .args(args)
        .env_clear()
        .envs(aws_env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the build's container has: the AWS CLI on PATH, credentials, the
/// region, and (here only) the local S3 server's address.
pub(crate) fn aws_env() -> Vec<(String, String)> {
    let path = format!("{}:{}", venv_bin().display(), std::env::var("PATH").unwrap());
    [
        ("PATH", path.as_str()),
        ("AWS_ENDPOINT_URL", &s3_endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The binary under test and the retailer's config (rossmann's) packaged by
/// pipelines/package-release and published to a release folder on the local
/// S3 server, once per test run.
fn release() -> &'static str {
    static RELEASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RELEASE.get_or_init(|| {
        let dist = tempdir();
        let config = dist.path().join("retailer.toml");
        let rossmann = std::fs::read_to_string(repo_file("examples/rossmann.toml")).unwrap();
        // A 2% bar: the challenger of 2015-07-31 beats the one of 07-30 by
        // 0.5% (pooled 1-14), so the second day keeps the champion.
        let gate = "[promotion]\nmin_improvement = 0.02\n";
        std::fs::write(&config, format!("{rossmann}\n{LINEAR}\n{gate}")).unwrap();
        let out = dist.path().join("release");
        let package = Command::new("bash")
            .arg(repo_file("pipelines/package-release"))
            .args([env!("CARGO_BIN_EXE_salescast"), s(&out), s(&config)])
            .output()
            .unwrap();
        assert!(
            package.status.success(),
            "{}",
            String::from_utf8_lossy(&package.stderr)
        );
        let release = format!("s3://{}/releases/v-test", s3_bucket("release"));
        aws(&["s3", "cp", "--recursive", "--only-show-errors", s(&out), &release]);
        release
    })
}

/// The build host's cache folder shared by every build of this test run.
fn host_cache() -> &'static Path {
    static CACHE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| run_folder("build-cache"))
}

/// The daily job's surroundings: the lake and a fresh registry on the local
/// S3 server, the release, and more of the project's environment (RAW_INPUT).
pub(crate) struct DailyJob {
    pub place: Place,
    pub release: String,
    pub env: Vec<(String, String)>,
    /// The build host's local cache (CodeBuild's LOCAL_CUSTOM_CACHE): the
    /// folder behind the buildspec's `cache` paths, kept between builds. One
    /// per test run by default, as on a host that runs every build.
    pub cache: PathBuf,
}

impl DailyJob {
    /// On the shared rossmann lake: for runs that write nothing to the lake.
    pub fn new() -> Self {
        Self::on_lake(Place::new(Backend::S3).lake)
    }

    /// On `lake` (e.g. a `fresh_s3_lake`), with a fresh registry.
    pub fn on_lake(lake: String) -> Self {
        DailyJob {
            place: Place {
                lake,
                ..Place::new(Backend::S3)
            },
            release: release().to_string(),
            env: vec![],
            cache: host_cache().to_path_buf(),
        }
    }

    /// The project's environment (pipelines/salescast.yml sets these).
    pub(crate) fn project_env(&self) -> Vec<(String, String)> {
        let mut env = aws_env();
        env.push(("RELEASE_URI".into(), self.release.clone()));
        env.push(("SALESCAST_LAKE".into(), self.place.lake.clone()));
        env.push(("SALESCAST_REGISTRY".into(), self.place.registry.clone()));
        env.extend(self.env.iter().cloned());
        env
    }

    /// A folder holding the release's source.zip unpacked, as CodeBuild
    /// checks out its source (the retailer's salescast.toml included): a
    /// fresh copy for each build, which may write into it, of the zip
    /// downloaded and unpacked once per release and test run (a release's
    /// files never change).
    pub(crate) fn source_checkout(&self) -> tempfile::TempDir {
        static UNPACKED: std::sync::Mutex<BTreeMap<String, PathBuf>> = std::sync::Mutex::new(BTreeMap::new());
        let dir = tempdir();
        let mut unpacked = UNPACKED.lock().unwrap_or_else(|e| e.into_inner());
        let n = unpacked.len();
        let source = unpacked
            .entry(self.release.clone())
            .or_insert_with(|| {
                let source = run_folder(&format!("source-{n}"));
                let zip = dir.path().join("source.zip");
                aws(&[
                    "s3",
                    "cp",
                    "--only-show-errors",
                    &format!("{}/source.zip", self.release),
                    s(&zip),
                ]);
                python(
                    "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
                    &[s(&zip), s(&source)],
                );
                std::fs::remove_file(&zip).unwrap();
                source
            })
            .clone();
        drop(unpacked);
        copy_tree(&source, dir.path());
        dir
    }

    /// Runs buildspec.yml as CodeBuild does: its `env.variables` under the
    /// project's environment under the start-build overrides; every command
    /// of every phase in order in one bash, stopping at the first failure.
    pub fn codebuild(&self, overrides: &[(&str, &str)]) -> Build {
        self.codebuild_of("buildspec.yml", &[], overrides)
    }

    /// Runs the buildspec `file` of the source as `codebuild` does, with
    /// `build` (a batch build's identifier and env.variables from the graph,
    /// and the test's own faults) between the project's environment and the
    /// overrides. CodeBuild's documentation does not say whether a graph's
    /// variables or the batch's overrides win, so the tests keep them apart.
    pub fn codebuild_of(&self, file: &str, build: &[(String, String)], overrides: &[(&str, &str)]) -> Build {
        let source = self.source_checkout();
        let spec = yaml(&source.path().join(file));
        assert_eq!(spec["env"]["shell"], "bash");
        // The local custom cache: each cached folder a link to the host's.
        for path in spec["cache"]["paths"].as_array().into_iter().flatten() {
            let folder = path.as_str().unwrap().trim_end_matches("/**/*");
            let kept = self.cache.join(folder);
            std::fs::create_dir_all(&kept).unwrap();
            std::os::unix::fs::symlink(&kept, source.path().join(folder)).unwrap();
        }
        let mut script = String::from("set -e\n");
        for phase in ["install", "pre_build", "build", "post_build"] {
            for command in spec["phases"][phase]["commands"].as_array().into_iter().flatten() {
                script += command.as_str().unwrap();
                script += "\n";
            }
        }
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(&script).current_dir(source.path()).env_clear();
        for (key, value) in spec["env"]["variables"].as_object().unwrap() {
            cmd.env(key, value.as_str().unwrap());
        }
        cmd.envs(self.project_env());
        // CodeBuild names every build so; salescast's metrics.emf = "auto"
        // writes the jobs' EMF lines where it is set.
        cmd.env("CODEBUILD_BUILD_ID", "salescast:0b1d3c2a-test");
        cmd.envs(build.iter().map(|(k, v)| (k, v)));
        cmd.envs(overrides.iter().copied());
        let out = cmd.output().unwrap();
        let report_dir = source
            .path()
            .join(spec["env"]["variables"]["REPORT_DIR"].as_str().unwrap());
        let reports = std::fs::read_dir(&report_dir)
            .into_iter()
            .flatten()
            .map(|entry| entry.unwrap().path())
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        Build {
            code: out.status.code().unwrap_or(-1),
            log: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            report: std::fs::read_to_string(report_dir.join("report.md")).ok(),
            reports,
        }
    }

    pub fn champion(&self) -> String {
        let pointer = aws(&[
            "s3",
            "cp",
            &format!("{}/sales/champion.json", self.place.registry),
            "-",
        ]);
        serde_json::from_str::<Value>(&pointer).unwrap()["version"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn decision_kinds(&self) -> Vec<String> {
        self.place
            .decisions()
            .iter()
            .map(|d| d["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

pub(crate) struct Build {
    pub code: i32,
    pub log: String,
    /// REPORT_DIR/report.md
    pub report: Option<String>,
    /// Every file of REPORT_DIR by name.
    pub reports: BTreeMap<String, String>,
}

impl Build {
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "build log:\n{}", self.log);
        self
    }
}

#[test]
fn buildspec_promotes_then_keeps_then_rolls_back() {
    // A host that has run no build yet: the first build downloads the
    // release, the next ones take the checked binary from the cache.
    let host = tempdir();
    let job = DailyJob {
        cache: host.path().to_path_buf(),
        ..DailyJob::new()
    };

    // The schedule sets MODE and its scheduled time; the run date is the day before.
    let first = job
        .codebuild(&[("MODE", "retrain"), ("SCHEDULED_TIME", "2015-07-31T05:30:00Z")])
        .expect_code(0);
    assert!(
        first.log.contains("salescast-x86_64-linux.tar.gz: OK"),
        "{}",
        first.log
    );
    let report = first
        .report
        .expect("the run report is kept for the build's artifacts");
    assert!(
        report.starts_with("# salescast retrain 2015-07-30: promoted"),
        "{report}"
    );
    assert!(report.contains("estimated cost of this run: $"), "{report}");
    let promoted = job.champion();

    let second = job
        .codebuild(&[("MODE", "retrain"), ("SCHEDULED_TIME", "2015-08-01T05:30:00Z")])
        .expect_code(0);
    assert!(
        second.log.contains("salescast-x86_64-linux.tar.gz (")
            && second.log.contains(") from the cache .release-cache")
            && !second.log.contains(": OK"),
        "the second build takes the binary from the cache:\n{}",
        second.log
    );
    let report = second.report.unwrap();
    assert!(
        report.starts_with("# salescast retrain 2015-07-31: kept the champion"),
        "{report}"
    );
    assert_eq!(job.champion(), promoted, "a kept champion stays");

    // A person rolls back to the stored challenger of the second day.
    let kept_challenger = job.place.registry_cmd(&["models", "list"]).expect_code(0).json()["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .find(|v| *v != promoted)
        .expect("the second day's challenger is stored");
    job.codebuild(&[
        ("MODE", "rollback"),
        ("MODEL_VERSION", &kept_challenger[..12]),
        ("REASON", "buildspec test"),
    ])
    .expect_code(0);
    assert_eq!(job.champion(), kept_challenger);
    assert_eq!(job.decision_kinds(), ["promoted", "kept", "rolled_back"]);

    // Refusals: a rollback without a reason, an unknown mode, and a release
    // whose checksum does not match; none changes the champion or the log.
    let no_reason = job.codebuild(&[("MODE", "rollback")]);
    assert_ne!(no_reason.code, 0, "{}", no_reason.log);
    assert!(no_reason.log.contains("REASON"), "{}", no_reason.log);
    let bad_mode = job.codebuild(&[("MODE", "retrian")]).expect_code(2);
    assert!(
        bad_mode
            .log
            .contains("MODE must be daily, retrain, rollback, ingest, monitor-shard,")
            && bad_mode
                .log
                .contains("predict-shard or predict-fan-in, not 'retrian'"),
        "{}",
        bad_mode.log
    );
    let tampered_release = format!("s3://{}/releases/v-tampered", s3_bucket("tampered"));
    aws(&[
        "s3",
        "cp",
        "--recursive",
        "--only-show-errors",
        &job.release,
        &tampered_release,
    ]);
    let wrong_sum = tempdir();
    let sum_file = wrong_sum.path().join("salescast-x86_64-linux.tar.gz.sha256");
    std::fs::write(
        &sum_file,
        format!("{}  salescast-x86_64-linux.tar.gz\n", "0".repeat(64)),
    )
    .unwrap();
    aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        s(&sum_file),
        &format!("{tampered_release}/"),
    ]);
    let job = DailyJob {
        release: tampered_release,
        ..job
    };
    let tampered = job.codebuild(&[("MODE", "retrain"), ("SCHEDULED_TIME", "2015-08-01T05:30:00Z")]);
    assert_ne!(tampered.code, 0, "{}", tampered.log);
    assert!(
        tampered.log.contains("FAILED"),
        "sha256sum should report the mismatch:\n{}",
        tampered.log
    );
    assert!(
        tampered.report.is_none(),
        "salescast must not run from an unchecked binary"
    );
    assert!(
        !host.path().join(".release-cache").join("0".repeat(64)).exists(),
        "an archive that failed its check is not cached"
    );
    assert_eq!(job.champion(), kept_challenger);
    assert_eq!(job.decision_kinds().len(), 3);
}

#[test]
fn retrain_workflow_steps_run_the_daily_job() {
    // The daily pipeline (without a raw location: monitor, retrain, predict) writes
    // forecasts into the lake: a lake of its own.
    let job = DailyJob::on_lake(fresh_s3_lake());
    let workflow = yaml(&repo_file(".github/workflows/retrain.yml"));
    let daily = &workflow["jobs"]["daily-job"];
    let checkout = job.source_checkout();
    let summary = checkout.path().join("step-summary.md");
    std::fs::write(&summary, "").unwrap();

    // The workflow_dispatch inputs a person gives, through the job's `env:`.
    let inputs = BTreeMap::from([("mode", "daily"), ("date", "2015-07-30")]);
    let mut env: Vec<(String, String)> = job.project_env();
    for (key, value) in daily["env"].as_object().unwrap() {
        let expression = value.as_str().unwrap();
        let resolved = match expression {
            e if e.contains("inputs.mode") => inputs["mode"].to_string(),
            e if e.contains("inputs.date") => inputs["date"].to_string(),
            e if e.contains("inputs.") || e.contains("vars.") => continue,
            literal => literal.to_string(),
        };
        env.push((key.clone(), resolved));
    }
    env.push(("GITHUB_STEP_SUMMARY".into(), s(&summary).to_string()));

    let mut ran = vec![];
    for step in daily["steps"].as_array().unwrap() {
        let Some(run) = step["run"].as_str() else { continue };
        // GitHub's default shell on Linux: bash -e {0}.
        let out = Command::new("bash")
            .args(["-e", "-c", run])
            .current_dir(checkout.path())
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "step {:?} failed:\n{}{}",
            step["name"],
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran.push(step["name"].as_str().unwrap().to_string());
    }
    assert_eq!(ran.len(), 3, "fetch, run and summary steps: {ran:?}");
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.starts_with("# salescast monitor 2015-07-30: model sales\n"),
        "{summary}"
    );
    assert!(
        summary.contains("\n# salescast retrain 2015-07-30: promoted"),
        "{summary}"
    );
    assert_eq!(job.decision_kinds(), ["promoted"]);
    let manifest = manifest_of(&job.place.lake, "2015-07-30");
    assert_eq!(manifest["model_sha256"].as_str(), Some(job.champion().as_str()));
}
