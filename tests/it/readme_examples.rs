//! Manual examples run as shown: the answers-file example of section
//! "Answers file" (docs/src/runbooks.md), with `assets/example-inventory.toml`, confirms every
//! destructive step of the shipped rogue-sync-wipe (a dry run says "the
//! answers file types it" for each and names no open parameter).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

/// The first ```toml block after the heading `heading`.
fn toml_block(readme: &str, heading: &str) -> String {
    let start = readme.find(heading).expect("heading in the manual");
    let rest = &readme[start..];
    let open = rest.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let close = rest[open..].find("```").expect("closed block");
    rest[open..open + close].to_string()
}

#[test]
fn answers_file_example_confirms_every_destructive_step_of_rogue_sync_wipe() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/docs/src/runbooks.md")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let answers = tmp.path().join("answers.toml");
    std::fs::write(&answers, toml_block(&readme, "## Answers file")).unwrap();
    let o = support::lifeline(&tmp.path().join("state"))
        .current_dir(tmp.path())
        .arg("-i")
        .arg(format!("{root}/assets/example-inventory.toml"))
        .args(["run", "rogue-sync-wipe", "--dry-run", "--answers"])
        .arg(&answers)
        .output()
        .unwrap();
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let confirms: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("confirm: type"))
        .collect();
    assert_eq!(confirms.len(), 4, "restore, owners, swap, start: {out}");
    for c in &confirms {
        assert!(c.contains("the answers file types it"), "{c}\n{out}");
    }
    assert!(!out.contains("would stop"), "{out}");
    assert!(!out.contains("CANNOT RESOLVE"), "{out}");
    assert!(!err.contains("without a value"), "{err}");
}
