//! The bad-invocation corpus (`tests/data/bad_invocations.tsv`): command
//! lines, config files and environments that are each wrong in one way. Every
//! row runs the real binary and must exit with its code (2 usage or config,
//! 3 data, 5 no champion, ...), print a message containing its text, not
//! panic, and change nothing in the lake or the registries it was given.
//! `tests/data/malformed/` is the companion corpus for data files.

use std::path::Path;
use std::process::Stdio;

use crate::util::{repo_file, run, run_cmd, s, salescast, snapshot, tempdir};

/// One row of the table.
#[derive(Debug)]
struct Case {
    id: String,
    what: String,
    config: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
    exit: i32,
    message: String,
}

/// Splits on spaces; a token in double quotes may hold spaces (`""` is an
/// empty argument).
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                word.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
    out
}

fn parse(table: &str) -> Vec<Case> {
    table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 7, "7 columns expected: {line}");
            let dash = |c: &str| if c == "-" { String::new() } else { c.to_string() };
            Case {
                id: cols[0].to_string(),
                what: cols[1].to_string(),
                config: dash(cols[2]).replace("\\n", "\n").replace("\\t", "\t"),
                env: words(&dash(cols[3]))
                    .into_iter()
                    .map(|pair| {
                        let (name, value) = pair.split_once('=').unwrap_or_else(|| panic!("{pair}"));
                        (name.to_string(), value.to_string())
                    })
                    .collect(),
                args: words(cols[4]),
                exit: cols[5].parse().unwrap_or_else(|_| panic!("exit code: {line}")),
                message: cols[6].to_string(),
            }
        })
        .collect()
}

/// The places the rows name: `{dir}` (the working folder), `{lake}` (a small
/// ingested lake), `{empty}` (a registry with no model), `{damaged}` (a
/// registry whose `champion.json` is garbage and whose two version folders
/// share the prefix `abc`), `{file}` (a plain file), `{binary}` (a file
/// that is not UTF-8), `{busy}` (an address another socket holds),
/// `{config}` (the row's config text, written to a file).
struct Places {
    dir: tempfile::TempDir,
    busy: std::net::TcpListener,
}

impl Places {
    fn new() -> Self {
        let dir = tempdir();
        let root = dir.path();
        let sales = root.join("sales.csv");
        std::fs::write(
            &sales,
            "date,store,item,sales,promo,holiday,open\n\
             2024-03-01,S01,I01,12,0,0,1\n2024-03-02,S01,I01,5,1,0,1\n",
        )
        .unwrap();
        let stores = root.join("stores.csv");
        std::fs::write(&stores, "store,store_type,store_size\nS01,a,120\n").unwrap();
        let stores = format!("stores={}", s(&stores));
        run(
            root,
            &[
                "--lake",
                "lake",
                "ingest",
                "--input",
                s(&sales),
                "--attributes",
                &stores,
            ],
        )
        .expect_code(0);
        std::fs::create_dir_all(root.join("empty")).unwrap();
        let model = root.join("damaged/sales");
        for version in ["abc1", "abc2"] {
            let folder = model
                .join("versions")
                .join(format!("{version}{}", "0".repeat(60)));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("manifest.json"), "{}").unwrap();
        }
        std::fs::write(model.join("champion.json"), "not json").unwrap();
        std::fs::write(root.join("file.txt"), "a plain file\n").unwrap();
        std::fs::write(root.join("binary.toml"), [0xff, 0xfe, 0, 0x80]).unwrap();
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std::fs::create_dir_all(root.join("configs")).unwrap();
        Self { dir, busy }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn fill(&self, text: &str, config: &Path) -> String {
        let root = self.root();
        text.replace("{dir}", s(root))
            .replace("{lake}", s(&root.join("lake")))
            .replace("{empty}", s(&root.join("empty")))
            .replace("{damaged}", s(&root.join("damaged")))
            .replace("{file}", s(&root.join("file.txt")))
            .replace("{binary}", s(&root.join("binary.toml")))
            .replace("{busy}", &self.busy.local_addr().unwrap().to_string())
            .replace("{config}", s(config))
    }

    /// What the rows may not change.
    fn state(&self) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        ["lake", "empty", "damaged"]
            .iter()
            .flat_map(|p| snapshot(&self.root().join(p)))
            .collect()
    }
}

#[test]
fn every_bad_invocation_exits_with_its_code_and_names_the_culprit() {
    let table = std::fs::read_to_string(repo_file("tests/data/bad_invocations.tsv")).unwrap();
    let cases = parse(&table);
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let ids: std::collections::BTreeSet<_> = cases.iter().map(|c| &c.id).collect();
    assert_eq!(ids.len(), cases.len(), "two rows share an id");

    let places = Places::new();
    let before = places.state();
    let mut failures = Vec::new();
    for case in &cases {
        let config = places.root().join("configs").join(format!("{}.toml", case.id));
        if !case.config.is_empty() {
            std::fs::write(&config, places.fill(&case.config, &config)).unwrap();
        }
        let mut cmd = salescast(places.root());
        cmd.stdin(Stdio::null());
        for (name, value) in &case.env {
            cmd.env(name, places.fill(value, &config));
        }
        cmd.args(case.args.iter().map(|a| places.fill(a, &config)));
        let outcome = run_cmd(&mut cmd);
        let stderr = outcome.stderr.trim();
        let mut wrong = Vec::new();
        if outcome.code != case.exit {
            wrong.push(format!("exit {} (expected {})", outcome.code, case.exit));
        }
        if stderr.contains("panicked") {
            wrong.push("a panic".to_string());
        }
        if !stderr.contains(&places.fill(&case.message, &config)) {
            wrong.push(format!("no {:?} in the message", case.message));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} ({}): {}\n  args: {:?}\n  stderr: {stderr}\n  stdout: {}",
                case.id,
                case.what,
                wrong.join(", "),
                case.args,
                outcome.stdout.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        before == places.state(),
        "a refused invocation changed the lake or a registry"
    );
}

#[test]
fn the_corpus_parser_keeps_quoted_words() {
    assert_eq!(
        words(r#"rollback --reason "a b" --to """#),
        ["rollback", "--reason", "a b", "--to", ""]
    );
}
