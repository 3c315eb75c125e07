use super::*;

const GOOD: &str = r#"
name = "tovplay"
env = "production"

[[host]]
name = "prod"
address = "app.example.net:22"
user = "admin"
identity = "~/.ssh/id_ed25519"

[[host]]
name = "here"
transport = "local"

[[database]]
name = "main"
url = "postgres://app@db.example.net:5432/TovPlay"
password_env = "MAIN_PGPASSWORD"
host = "prod"
watch = ["User", "GameRequest"]
expect = { User = { min = 20 } }

[[backups]]
name = "nightly"
host = "prod"
path = "/opt/backups/external"
pattern = "tovplay_external_%Y%m%d_%H%M%S.sql"
database = "main"

[[service]]
name = "sync"
host = "prod"
kind = "process"
match = "db_realtime_sync.sh"
databases = ["main"]
"#;

fn errs(text: &str) -> Vec<String> {
    match Inventory::parse(text, "inv.toml") {
        Ok(_) => vec![],
        Err(d) => d.0.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn good_inventory_loads() {
    let inv = Inventory::parse(GOOD, "inv.toml").unwrap();
    assert_eq!(inv.hosts.len(), 2);
    assert_eq!(inv.env.as_deref(), Some("production"));
    let db = inv.database("main").unwrap();
    assert_eq!(db.pg_url().unwrap().dbname, "TovPlay");
    assert_eq!(db.expect["User"].min, Some(20));
    assert_eq!(
        inv.services[0].match_.as_deref(),
        Some("db_realtime_sync.sh")
    );
    assert_eq!(
        inv.host("prod").unwrap().socket_address(),
        Some(("app.example.net".into(), 22))
    );
}

#[test]
fn type_error_has_line_col_and_key() {
    let bad = GOOD.replace("address = \"app.example.net:22\"", "address = 22");
    let e = errs(&bad);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("inv.toml:7:11: 'address':"), "{e:?}");
}

#[test]
fn inline_password_named_with_fix() {
    let bad = GOOD.replace(
        "password_env = \"MAIN_PGPASSWORD\"",
        "password = \"hunter2\"",
    );
    let e = errs(&bad);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("'password'"), "{e:?}");
    assert!(
        e[0].contains("password_env") && e[0].contains("password_file") && e[0].contains(".pgpass")
    );
    assert!(!e[0].contains("hunter2"));
}

#[test]
fn password_in_url_rejected() {
    let bad = GOOD.replace("postgres://app@db", "postgres://app:hunter2@db");
    let e = errs(&bad);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("'url'") && e[0].contains("password_env"),
        "{e:?}"
    );
    assert!(!e[0].contains("hunter2"));
}

#[test]
fn all_errors_listed_not_just_first() {
    let bad = GOOD
        .replace("name = \"here\"", "name = \"prod\"")
        .replace("database = \"main\"", "database = \"mian\"")
        .replace(
            "address = \"app.example.net:22\"",
            "address = \"app.example.net:99999\"",
        )
        .replace("kind = \"process\"", "kind = \"daemon\"");
    let e = errs(&bad);
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e.iter().any(|m| m.contains("used twice")));
    assert!(
        e.iter()
            .any(|m| m.contains("no database named 'mian'") && m.contains("'main'"))
    );
    assert!(e.iter().any(|m| m.contains("99999")));
    assert!(e.iter().any(|m| m.contains("daemon")));
}

#[test]
fn unknown_keys_rejected_with_location() {
    let bad = GOOD.replace("watch = ", "wacth = ");
    let e = errs(&bad);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].contains("inv.toml:20:1") && e[0].contains("wacth") && !e[0].contains("`password`"),
        "{e:?}"
    );
    let e = errs("[[hosts]]\nname='x'\n");
    assert!(
        e[0].contains("inv.toml:1:3") && e[0].contains("hosts"),
        "{e:?}"
    );
}

#[test]
fn syntax_error_located() {
    let e = errs("[[host]]\nname = \"x\ntransport = \"local\"\n");
    assert!(e[0].starts_with("inv.toml:2:"), "{e:?}");
}

#[test]
fn ssh_host_needs_address() {
    let e = errs("[[host]]\nname = \"x\"\n");
    assert!(e[0].contains("no 'address'"), "{e:?}");
}

#[test]
fn pgpass_escapes() {
    assert_eq!(
        pgpass_fields(r"h:5432:db:u:pa\:ss\\x"),
        vec!["h", "5432", "db", "u", r"pa:ss\x"]
    );
}

#[test]
fn secrets_registered_from_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let pwf = dir.path().join("pw");
    std::fs::write(&pwf, "file-secret-77\n").unwrap();
    let text = format!(
        "[[database]]\nname='a'\nurl='postgres://u@h/a'\npassword_file='{}'\n[[database]]\nname='b'\nurl='postgres://u@h/b'\npassword_env='LIFELINE_TEST_UNSET_VAR_X'\n",
        pwf.display()
    );
    let inv = Inventory::parse(&text, "i.toml").unwrap();
    let r = Redactor::new();
    let warnings = inv.register_secrets(&r);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(r.redact("pw file-secret-77"), "pw ***");
}

#[test]
fn restore_role_is_checked() {
    let with = |role: &str| {
        GOOD.replace(
            "password_env = \"MAIN_PGPASSWORD\"",
            &format!("password_env = \"MAIN_PGPASSWORD\"\nrestore_role = \"{role}\""),
        )
    };
    let ok = Inventory::parse(&with("lifeline_restore"), "inv.toml").unwrap();
    assert_eq!(
        ok.databases[0]
            .restore_role
            .as_ref()
            .map(|r| r.get_ref().as_str()),
        Some("lifeline_restore")
    );
    for (role, says) in [
        ("", "not a role name"),
        ("postgres", "superuser or built-in"),
        ("pg_write_server_files", "superuser or built-in"),
        ("app", "the URL's user"),
    ] {
        let e = errs(&with(role));
        assert_eq!(e.len(), 1, "{role}: {e:?}");
        assert!(e[0].contains("'restore_role'"), "{e:?}");
        assert!(e[0].contains(says), "{role}: {e:?}");
        assert!(e[0].starts_with("inv.toml:"), "{e:?}");
    }
}

const ARCHIVES: &str = r#"
[[archive]]
name = "wal"
kind = "wal-dir"
host = "prod"
databases = ["main"]
base_dir = "/var/backups/base"
wal_dir = "/var/backups/wal"
recovery_dir = "/srv/pitr"

[[archive]]
name = "repo"
kind = "pgbackrest"
host = "prod"
stanza = "main"
config = "/etc/pgbackrest/pgbackrest.conf"
"#;

#[test]
fn archives_parse_and_are_checked_per_kind() {
    let inv = Inventory::parse(&format!("{GOOD}{ARCHIVES}"), "t.toml").unwrap();
    assert_eq!(inv.archives.len(), 2);
    let a = inv.archive("wal").unwrap();
    assert_eq!(a.kind, ArchiveKind::WalDir);
    assert_eq!(a.wal_dir.as_deref(), Some("/var/backups/wal"));
    assert_eq!(inv.archive("repo").unwrap().kind, ArchiveKind::Pgbackrest);

    let bad = r#"
[[archive]]
name = "w1"
kind = "wal-dir"
host = "nowhere"
base_dir = "relative/base"
stanza = "x"

[[archive]]
name = "b1"
kind = "pgbackrest"
host = "prod"
stanza = "main; rm -rf /"
wal_dir = "/w"
os_user = "postgres user"

[[archive]]
name = "k1"
kind = "barman"
host = "prod"
"#;
    let e = errs(&format!("{GOOD}{bad}")).join("\n");
    for want in [
        "no host named 'nowhere'",
        "'base_dir' must be an absolute path, not 'relative/base'",
        "needs 'wal_dir'",
        "'stanza' does not apply to kind 'wal-dir'",
        "stanza 'main; rm -rf /' may hold only",
        "needs 'config'",
        "'wal_dir' does not apply to kind 'pgbackrest'",
        "os_user 'postgres user' is not a user name",
        "unknown variant `barman`",
    ] {
        assert!(e.contains(want), "missing '{want}' in:\n{e}");
    }
}
