//! `salescast users` through the real binary on both backends: the first
//! admin added with no default password, store users with their stores, the
//! refusals (exit 2 naming the problem), changes and disabling, the listing
//! without hashes, the audit log, and the password in no output or file.

use std::io::Write as _;
use std::process::Stdio;

use crate::retrain::{Backend, Place};
use crate::util::{Outcome, on_every_backend, repo_file, run_cmd};

const PASSWORD: &str = "a long enough passphrase";

on_every_backend!(users_are_added_changed_listed_and_audited);

/// `users ARGS`, with `stdin` piped in.
pub(crate) fn users(place: &Place, args: &[&str], stdin: Option<&str>) -> Outcome {
    let mut all = vec!["users"];
    all.extend_from_slice(args);
    let mut cmd = place
        .cli(&repo_file("examples/rossmann.toml"))
        .command(place.dir.path(), &all);
    let Some(input) = stdin else {
        return run_cmd(cmd.stdin(Stdio::null()));
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn users_are_added_changed_listed_and_audited(backend: Backend) {
    let place = Place::new(backend);
    let mut outputs = Vec::new();
    let mut keep = |out: Outcome| {
        outputs.push(format!("{}{}", out.stdout, out.stderr));
        out
    };
    let listed = keep(users(&place, &["list"], None).expect_code(0)).json();
    assert_eq!(listed["users"].as_array().unwrap().len(), 0, "no default account");

    let line = format!("{PASSWORD}\n");
    let added = keep(
        users(
            &place,
            &["add", "root", "--role", "admin", "--password-stdin"],
            Some(&line),
        )
        .expect_code(0),
    )
    .json();
    assert_eq!(
        (added["action"].as_str(), added["users"][0]["role"].as_str()),
        (Some("added"), Some("admin"))
    );
    keep(
        users(
            &place,
            &[
                "add",
                "maria",
                "--role",
                "store",
                "--store",
                "102",
                "--store",
                "1020",
                "--password-stdin",
            ],
            Some(&line),
        )
        .expect_code(0),
    );

    // Refusals: usage errors that say what is wrong.
    for (args, stdin, says) in [
        (
            vec!["add", "root", "--role", "admin", "--password-stdin"],
            Some(line.as_str()),
            "already exists",
        ),
        (
            vec!["add", "x", "--role", "boss", "--password-stdin"],
            Some(line.as_str()),
            "--role",
        ),
        (
            vec!["add", "x", "--role", "store", "--password-stdin"],
            Some(line.as_str()),
            "at least one --store",
        ),
        (
            vec!["add", "x", "--role", "admin", "--password-stdin"],
            Some("short\n"),
            "12 to 256 characters",
        ),
        (
            vec!["add", "x", "--role", "admin", "--password-stdin"],
            Some(""),
            "stdin gave no password",
        ),
        (
            vec!["add", "Bad/Name", "--role", "admin", "--password-stdin"],
            Some(line.as_str()),
            "user name",
        ),
        (vec!["add", "x", "--role", "admin"], None, "--password-stdin"),
        (vec!["disable", "nobody"], None, "no user \"nobody\""),
    ] {
        let out = keep(users(&place, &args, stdin).expect_code(2));
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }

    keep(users(&place, &["set-role", "maria", "--role", "manager"], None).expect_code(0));
    let new_line = "another long passphrase\n";
    keep(users(&place, &["passwd", "maria", "--password-stdin"], Some(new_line)).expect_code(0));
    keep(users(&place, &["disable", "maria"], None).expect_code(0));
    let listed = keep(users(&place, &["list"], None).expect_code(0));
    let json = listed.json();
    let users_listed = json["users"].as_array().unwrap();
    assert_eq!(users_listed.len(), 2);
    assert_eq!(users_listed[0]["name"], "maria");
    assert_eq!(
        (
            users_listed[0]["role"].as_str(),
            users_listed[0]["disabled"].as_bool()
        ),
        (Some("manager"), Some(true))
    );
    assert!(
        !listed.stdout.contains("argon2") && !listed.stdout.contains("password"),
        "{}",
        listed.stdout
    );

    // The audit log, in the registry's store.
    let registry = place.registry_store();
    let audit: Vec<serde_json::Value> = registry
        .list("accounts/audit/")
        .unwrap()
        .iter()
        .map(|m| serde_json::from_slice(&registry.get(&m.key).unwrap().bytes).unwrap())
        .collect();
    let events: Vec<&str> = audit.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "user_added",
            "user_added",
            "role_changed",
            "password_changed",
            "user_disabled"
        ]
    );
    assert!(audit.iter().all(|e| e["from"] == "cli" && e["actor"].is_string()));

    // The passwords are in no output and in no stored object.
    for text in &outputs {
        assert!(
            !text.contains(PASSWORD) && !text.contains("another long passphrase"),
            "{text}"
        );
    }
    for meta in registry.list("accounts/").unwrap() {
        let bytes = String::from_utf8_lossy(&registry.get(&meta.key).unwrap().bytes).into_owned();
        assert!(
            !bytes.contains(PASSWORD) && !bytes.contains("another long passphrase"),
            "{}: {bytes}",
            meta.key
        );
    }
}
