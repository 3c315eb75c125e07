//! `lifeline check`: exit 2 with file:line:col on a bad inventory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

fn check(text: &str) -> (i32, String, String) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("broken.toml");
    std::fs::write(&p, text).unwrap();
    let out = support::lifeline(d.path())
        .current_dir(d.path())
        .args(["check", "-i", "broken.toml"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        support::stdout(&out),
        support::stderr(&out),
    )
}

#[test]
fn type_error_gives_file_line_col_and_exit_2() {
    let (code, _, err) = check("[[host]]\nname = \"prod\"\naddress = 22\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("broken.toml:3:11: 'address'"), "{err}");
}

#[test]
fn inline_password_names_key_and_fix() {
    let (code, _, err) = check(
        "[[database]]\nname = \"main\"\nurl = \"postgres://app@db/TovPlay\"\npassword = \"s3cret-x\"\n",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("broken.toml:4:") && err.contains("'password'"),
        "{err}"
    );
    assert!(
        err.contains("password_env") && err.contains("password_file"),
        "{err}"
    );
    assert!(!err.contains("s3cret-x"), "secret echoed: {err}");
}

#[test]
fn lists_every_error() {
    let (code, _, err) = check(
        "[[host]]\nname = \"a\"\naddress = \"h:0\"\n[[backups]]\nname = \"n\"\nhost = \"b\"\npath = \"/x\"\ndatabase = \"d\"\n",
    );
    assert_eq!(code, 2);
    assert!(err.contains("3 problem(s)"), "{err}");
}

#[test]
fn good_inventory_exit_0() {
    let (code, out, err) = check(include_str!("../../assets/example-inventory.toml"));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok:"), "{out}");
}

#[test]
fn missing_inventory_is_usage_error() {
    let d = tempfile::tempdir().unwrap();
    let out = support::lifeline(d.path())
        .current_dir(d.path())
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(support::stderr(&out).contains("no inventory"));
}
