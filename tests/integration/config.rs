//! Configuration as users meet it: file, environment and flags, with unknown
//! keys and variables refused (exit 2) by name.

use crate::util::{run, run_cmd, salescast, tempdir};

#[test]
fn an_unknown_key_in_the_file_is_named() {
    let dir = tempdir();
    std::fs::write(dir.path().join("salescast.toml"), "[window]\nhistory_dayz = 30\n").unwrap();
    let out = run(dir.path(), &["check"]).expect_code(2);
    assert!(
        out.stderr.contains("history_dayz") && out.stderr.contains("salescast.toml"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_environment_variable_is_named() {
    let dir = tempdir();
    let out = run_cmd(salescast(dir.path()).env("SALESCAST_LAEK", "x").arg("check")).expect_code(2);
    assert!(out.stderr.contains("SALESCAST_LAEK"), "{}", out.stderr);
}

#[test]
fn a_missing_config_file_is_a_usage_error() {
    let dir = tempdir();
    let out = run(dir.path(), &["--config", "nope.toml", "check"]).expect_code(2);
    assert!(out.stderr.contains("nope.toml"), "{}", out.stderr);
}

#[test]
fn flags_override_environment_which_overrides_the_file() {
    let dir = tempdir();
    std::fs::write(dir.path().join("salescast.toml"), "lake = \"file-lake\"\n").unwrap();
    // The error names the lake that was used, which tells which layer won.
    let from_env = run_cmd(salescast(dir.path()).env("SALESCAST_LAKE", "env-lake").args([
        "check",
        "--date",
        "2020-01-01",
    ]));
    assert!(
        from_env
            .expect_code(3)
            .stderr
            .contains("env-lake/sales/dt=2020-01-01")
    );
    let from_flag = run_cmd(salescast(dir.path()).env("SALESCAST_LAKE", "env-lake").args([
        "--lake",
        "flag-lake",
        "check",
        "--date",
        "2020-01-01",
    ]));
    assert!(
        from_flag
            .expect_code(3)
            .stderr
            .contains("flag-lake/sales/dt=2020-01-01")
    );
    let from_file = run(dir.path(), &["check", "--date", "2020-01-01"]).expect_code(3);
    assert!(
        from_file.stderr.contains("file-lake/sales/dt=2020-01-01"),
        "{}",
        from_file.stderr
    );
}

#[test]
fn a_bad_command_line_exits_2() {
    let dir = tempdir();
    run(dir.path(), &["check", "--date", "yesterday"]).expect_code(2);
    run(dir.path(), &["no-such-command"]).expect_code(2);
}

#[test]
fn salescast_log_takes_tracing_directives() {
    let dir = tempdir();
    let input = dir.path().join("sales.csv");
    std::fs::write(
        &input,
        "date,store,item,sales,promo,holiday,open\n2024-03-01,S01,I01,12,0,0,1\n",
    )
    .unwrap();
    let ingest = |log: Option<&str>| {
        let mut cmd = salescast(dir.path());
        if let Some(value) = log {
            cmd.env("SALESCAST_LOG", value);
        }
        run_cmd(cmd.args(["--lake", "lake", "ingest", "--input", "sales.csv"]))
    };
    let logged = |out: &crate::util::Outcome| out.stderr.contains("INFO");
    assert!(logged(&ingest(None).expect_code(0)), "info is the default");
    assert!(!logged(&ingest(Some("warn")).expect_code(0)));
    assert!(
        !logged(&ingest(Some("salescast_core=warn")).expect_code(0)),
        "a target's level"
    );
    assert!(logged(&ingest(Some("salescast_core=debug")).expect_code(0)));
    for bad in ["debgu", "salescast_core=loud"] {
        let out = ingest(Some(bad)).expect_code(2);
        assert!(out.stderr.contains("SALESCAST_LOG"), "{bad}: {}", out.stderr);
    }
}
