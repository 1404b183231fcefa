//! A real S3 client reads what salescast wrote: the AWS CLI lists the
//! registry layout (`aws s3 ls`) and copies the champion pointer and a run
//! report (`aws s3 cp`) from the local S3 server.

use std::process::Command;

use crate::retrain::{Backend, Place};

fn aws(args: &[&str]) -> String {
    let python = std::env::var("TEST_PYTHON").expect("TEST_PYTHON: run the tests with scripts/test.sh");
    let aws = std::path::Path::new(&python).with_file_name("aws");
    let out = Command::new(&aws)
        .args([
            "--endpoint-url",
            &crate::util::s3_endpoint(),
            "--region",
            "us-east-1",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", aws.display()));
    assert!(
        out.status.success(),
        "aws {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_aws_cli_reads_the_registry_layout() {
    let place = Place::new(Backend::S3);
    let config = place.config(
        "[window]\nhistory_days = 400\n[training]\ncandidates = [\"seasonal_naive\", \"elastic_net\"]\n",
    );
    let report = place.retrain(&config, "2015-07-31").expect_code(0).json();
    let version = report["challenger"]["version"].as_str().unwrap();

    let listing = aws(&["s3", "ls", "--recursive", &format!("{}/", place.registry)]);
    for key in [
        format!("registry/sales/versions/{version}/model.bin"),
        format!("registry/sales/versions/{version}/manifest.json"),
        "registry/sales/champion.json".to_string(),
        "registry/sales/decisions/00000001.json".to_string(),
        "registry/sales/runs/2015-07-31/report.json".to_string(),
        "registry/sales/runs/2015-07-31/report.md".to_string(),
    ] {
        assert!(
            listing.contains(&key),
            "aws s3 ls does not show {key}:\n{listing}"
        );
    }

    let local = place.dir.path().join("champion.json");
    aws(&[
        "s3",
        "cp",
        &format!("{}/sales/champion.json", place.registry),
        local.to_str().unwrap(),
    ]);
    let champion: serde_json::Value = serde_json::from_slice(&std::fs::read(&local).unwrap()).unwrap();
    assert_eq!(champion["version"], version);
    assert_eq!(champion["kind"], "promoted");

    let md = aws(&[
        "s3",
        "cp",
        &format!("{}/sales/runs/2015-07-31/report.md", place.registry),
        "-",
    ]);
    assert!(md.starts_with("# salescast retrain 2015-07-31: promoted"), "{md}");
}
