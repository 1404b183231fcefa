//! The architecture lint (`.ci/module-graph`, which `.ci/lint` runs on this
//! repo): it fails on an import cycle and on a file above the line limit, and
//! passes once they are gone.

use std::path::Path;
use std::process::Command;

use crate::util::{repo_file, tempdir};

fn module_graph(root: &Path) -> (bool, String) {
    let out = Command::new("python3")
        .arg(repo_file(".ci/module-graph"))
        .arg(root)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_cycle_and_a_long_file_fail_the_lint() {
    let dir = tempdir();
    let src = dir.path().join("crates/toy/src");
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\n").unwrap();
    std::fs::write(src.join("a.rs"), "//! a\nuse crate::b::f;\n").unwrap();
    std::fs::write(src.join("b/mod.rs"), "//! b\nmod inner;\n").unwrap();
    std::fs::write(src.join("b/inner.rs"), "//! b's part\nuse crate::a;\n").unwrap();
    // A mention in a comment or a test is not an import.
    std::fs::write(
        src.join("c.rs"),
        "//! see crate::a\n#[cfg(test)]\nuse crate::a;\n",
    )
    .unwrap();
    let (passed, output) = module_graph(dir.path());
    assert!(!passed, "{output}");
    assert!(
        output.contains("import cycle in crates/toy: a -> b -> a"),
        "{output}"
    );
    assert!(!output.contains("-> c"), "{output}");

    std::fs::write(src.join("b/inner.rs"), "//! b's part\n").unwrap();
    assert!(module_graph(dir.path()).0, "no cycle left");
    std::fs::write(src.join("c.rs"), "//! long\n".repeat(601)).unwrap();
    let (passed, output) = module_graph(dir.path());
    assert!(
        !passed && output.contains("crates/toy/src/c.rs: 601 lines"),
        "{output}"
    );
}
