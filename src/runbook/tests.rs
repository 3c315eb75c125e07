use super::*;
use rstest::rstest;

const HEAD: &str = "id = \"t\"\ntitle = \"T\"\nwhen = \"w\"\n[[param]]\nname = \"db\"\nkind = \"database\"\nfrom = \"inventory\"\n";

fn errs(text: &str) -> String {
    Runbook::parse(text, "rb.toml").unwrap_err().to_string()
}

#[test]
fn builtins_parse() {
    for (id, text) in BUILTIN {
        let rb = Runbook::parse(text, id).unwrap_or_else(|e| panic!("{id}:\n{e}"));
        assert_eq!(rb.id, *id);
        assert!(rb.steps.iter().all(|s| !s.explain.is_empty()));
    }
}

#[test]
fn table_wiped_merges_by_default_and_the_swap_runbook_keeps_the_swap() {
    let rb = find("table-wiped", None).unwrap();
    let merge = rb.step("merge").unwrap();
    assert_eq!(merge.action, Action::MergeTables);
    assert!(merge.destructive);
    assert!(merge.requires.contains(&Requirement::Snapshot));
    assert!(rb.steps.iter().all(|s| s.action != Action::Swap));
    assert_eq!(rb.param("tables").unwrap().from, ParamFrom::Timeline);
    let swap = find("table-wiped-swap", None).unwrap();
    assert!(swap.step("swap").is_some());
}

#[test]
fn forced_flags_and_requirements() {
    let rb = Runbook::parse(BUILTIN[0].1, "x").unwrap();
    let restore = rb.step("restore").unwrap();
    assert!(restore.destructive);
    assert!(restore.requires.contains(&Requirement::WritersStopped));
    assert!(restore.requires.contains(&Requirement::Snapshot));
    assert!(!rb.step("snapshot").unwrap().destructive);
    assert_eq!(rb.step("stop-writers").unwrap().hold_s, 120);
}

#[rstest]
// unknown key in a step, located on its line
#[case(
    "[[step]]\nid = \"a\"\naction = \"note\"\nexplain = \"x\"\ncolour = \"red\"\n",
    "rb.toml:12:1: 'colour': unknown field `colour`"
)]
// wrong type
#[case(
    "[[step]]\nid = \"a\"\naction = \"note\"\nexplain = 5\n",
    "rb.toml:11:11: 'explain': invalid type: integer `5`, expected a string"
)]
// unknown action lists the known ones
#[case(
    "[[step]]\nid = \"a\"\naction = \"drop\"\nexplain = \"x\"\n",
    "rb.toml:10:10: 'action': unknown variant `drop`"
)]
// an argument the action does not take
#[case(
    "[[step]]\nid = \"a\"\naction = \"note\"\nexplain = \"x\"\nsql = \"SELECT 1\"\n",
    "rb.toml:12:7: 'sql': a note step takes no 'sql'"
)]
// missing required argument
#[case(
    "[[step]]\nid = \"a\"\naction = \"sql\"\nexplain = \"x\"\ndatabase = \"{db}\"\n",
    "'sql': step 'a': a sql step needs 'sql'"
)]
// a merge policy that does not exist
#[case(
    "[[step]]\nid = \"s\"\naction = \"snapshot\"\nexplain = \"x\"\ndatabase = \"{db}\"\n[[step]]\nid = \"m\"\naction = \"merge-tables\"\nexplain = \"x\"\ndatabase = \"{db}\"\nrestored = \"r\"\ntables = \"t\"\npolicy = \"mine-wins\"\n",
    "rb.toml:20:10: 'policy': 'mine-wins' is not a merge policy"
)]
// a transaction mode that does not exist
#[case(
    "[[step]]\nid = \"s\"\naction = \"snapshot\"\nexplain = \"x\"\ndatabase = \"{db}\"\n[[step]]\nid = \"m\"\naction = \"merge-tables\"\nexplain = \"x\"\ndatabase = \"{db}\"\nrestored = \"r\"\ntables = \"t\"\ntransaction = \"some\"\n",
    "'transaction': 'some' is not a transaction mode"
)]
// merge-tables needs its tables
#[case(
    "[[step]]\nid = \"s\"\naction = \"snapshot\"\nexplain = \"x\"\ndatabase = \"{db}\"\n[[step]]\nid = \"m\"\naction = \"merge-tables\"\nexplain = \"x\"\ndatabase = \"{db}\"\nrestored = \"r\"\n",
    "a merge-tables step needs 'tables'"
)]
// swap cannot be made non-destructive
#[case(
    "[[step]]\nid = \"s\"\naction = \"snapshot\"\nexplain = \"x\"\ndatabase = \"{db}\"\n[[step]]\nid = \"a\"\naction = \"swap\"\nexplain = \"x\"\ndatabase = \"{db}\"\nrestored = \"r\"\ndestructive = false\n",
    "rb.toml:19:15: 'destructive': a swap step is always destructive"
)]
// unknown reference
#[case(
    "[[step]]\nid = \"a\"\naction = \"sql\"\nexplain = \"x\"\ndatabase = \"{dbx}\"\nsql = \"SELECT 1\"\n",
    "rb.toml:12:12: 'database': '{dbx}' is neither a parameter nor an earlier step"
)]
// a later step cannot be referenced, nor a field it does not have
#[case(
    "[[step]]\nid = \"n\"\naction = \"note\"\nexplain = \"x\"\ntext = \"{s.nope}\"\n[[step]]\nid = \"s\"\naction = \"snapshot\"\nexplain = \"x\"\ndatabase = \"{db}\"\n",
    "'{s}' is neither a parameter nor an earlier step"
)]
#[case(
    "[[step]]\nid = \"s\"\naction = \"snapshot\"\nexplain = \"x\"\ndatabase = \"{db}\"\n[[step]]\nid = \"n\"\naction = \"note\"\nexplain = \"x\"\ntext = \"{s.nope}\"\n",
    "step 's' (snapshot) has no field 'nope'"
)]
// restore without anything that stops writers
#[case(
    "[[step]]\nid = \"s\"\naction = \"snapshot\"\nexplain = \"x\"\ndatabase = \"{db}\"\n[[step]]\nid = \"r\"\naction = \"restore\"\nexplain = \"x\"\ndatabase = \"{db}\"\ncatalog = \"c\"\nbackup = \"/b\"\n",
    "requires 'writers-stopped', but no earlier stop-services step of database '{db}'"
)]
// merge-tables without a snapshot of the database it writes to
#[case(
    "[[step]]\nid = \"m\"\naction = \"merge-tables\"\nexplain = \"x\"\ndatabase = \"{db}\"\nrestored = \"r\"\ntables = \"t\"\n",
    "requires 'snapshot', but no earlier snapshot step of database '{db}'"
)]
// destructive command without a database to confirm
#[case(
    "[[step]]\nid = \"c\"\naction = \"command\"\nexplain = \"x\"\nhost = \"h\"\ncommand = \"true\"\n",
    "step 'c' is destructive but names no 'database'"
)]
// duplicate step ids
#[case(
    "[[step]]\nid = \"a\"\naction = \"note\"\nexplain = \"x\"\n[[step]]\nid = \"a\"\naction = \"note\"\nexplain = \"y\"\n",
    "rb.toml:13:6: 'id': step id 'a' is used twice"
)]
// unclosed reference
#[case(
    "[[step]]\nid = \"a\"\naction = \"note\"\nexplain = \"x\"\ntext = \"{db\"\n",
    "rb.toml:12:8: 'text': '{db' is not closed"
)]
fn parse_errors_are_located(#[case] steps: &str, #[case] want: &str) {
    let e = errs(&format!("{HEAD}{steps}"));
    assert!(e.contains(want), "want {want:?} in:\n{e}");
}

#[test]
fn missing_top_level_and_syntax_errors() {
    let e = errs("title = \"x\"\n");
    assert!(e.contains("'id': missing"), "{e}");
    assert!(e.contains("'when': missing"), "{e}");
    let e = errs("id = \"x\"\n[[step]\n");
    assert!(e.starts_with("rb.toml:2:"), "{e}");
    assert!(e.contains("TOML syntax"), "{e}");
    let e = errs(&format!(
        "surprise = 1\n{HEAD}[[step]]\nid = \"a\"\naction = \"note\"\nexplain = \"x\"\n"
    ));
    assert!(
        e.contains("rb.toml:1:1: 'surprise': unknown top-level key"),
        "{e}"
    );
    // inside a [[param]] table it is an unknown field of the param
    let e = errs(&format!(
        "{HEAD}surprise = 1\n[[step]]\nid = \"a\"\naction = \"note\"\nexplain = \"x\"\n"
    ));
    assert!(
        e.contains("rb.toml:8:1: 'surprise': unknown field `surprise`"),
        "{e}"
    );
}

#[test]
fn every_error_reported_at_once() {
    let e = errs(&format!(
        "{HEAD}[[step]]\nid = \"a\"\naction = \"note\"\nexplain = \"\"\n[[step]]\nid = \"b\"\naction = \"sql\"\nexplain = \"x\"\n"
    ));
    assert!(e.lines().count() >= 3, "{e}");
}

#[test]
fn validated_against_inventory() {
    let inv = crate::inventory::Inventory::parse(
        "[[host]]\nname = \"h\"\ntransport = \"local\"\n[[database]]\nname = \"main\"\nurl = \"postgres://a@db/x\"\n",
        "inv.toml",
    )
    .unwrap();
    let rb = Runbook::parse(
        &format!(
            "{HEAD}[[step]]\nid = \"a\"\naction = \"sql\"\nexplain = \"x\"\ndatabase = \"other\"\ndestructive = false\nsql = \"SELECT 1\"\n[[step]]\nid = \"b\"\naction = \"command\"\nexplain = \"x\"\nhost = \"h\"\ndestructive = false\ncommand = \"true\"\n"
        ),
        "rb.toml",
    )
    .unwrap();
    let (errors, warnings) = validate_against(&rb, &inv);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].to_string(),
        "rb.toml:12:12: 'database': no database named 'other' in the inventory (known: 'main')"
    );
    assert!(warnings.is_empty());
}

#[test]
fn shipped_runbooks_pass_against_the_example_inventory() {
    let inv = crate::inventory::Inventory::parse(
        include_str!("../../assets/example-inventory.toml"),
        "example",
    )
    .unwrap();
    let r = check_runbooks(&inv, None).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.ok.len(), 7);
}

/// A restore without a catalog is accepted only when its backup is exactly
/// an earlier recover-pitr step's dump; recover-pitr is never destructive.
#[rstest]
#[case("{pitr.dump}", None)]
#[case("/tmp/x.dump", Some("a restore step needs 'catalog'"))]
#[case("{pitr.dump}.old", Some("a restore step needs 'catalog'"))]
#[case("{snap.path}", Some("a restore step needs 'catalog'"))]
fn a_restore_without_catalog_reads_only_a_pitr_dump(
    #[case] backup: &str,
    #[case] err: Option<&str>,
) {
    let text = format!(
        "{HEAD}[[step]]\nid = \"stop\"\naction = \"stop-services\"\nexplain = \"s\"\ndatabase = \"{{db}}\"\n\
[[step]]\nid = \"snap\"\naction = \"snapshot\"\nexplain = \"s\"\ndatabase = \"{{db}}\"\n\
[[step]]\nid = \"pitr\"\naction = \"recover-pitr\"\nexplain = \"p\"\ndatabase = \"{{db}}\"\narchive = \"wal\"\n\
[[step]]\nid = \"restore\"\naction = \"restore\"\nexplain = \"r\"\ndatabase = \"{{db}}\"\nbackup = \"{backup}\"\n"
    );
    match err {
        None => {
            let rb = Runbook::parse(&text, "rb.toml").unwrap_or_else(|e| panic!("{e}"));
            assert!(!rb.step("pitr").unwrap().destructive);
        }
        Some(e) => assert!(errs(&text).contains(e), "{}", errs(&text)),
    }
    let destructive = text.replace(
        "archive = \"wal\"\n",
        "archive = \"wal\"\ndestructive = true\n",
    );
    assert!(errs(&destructive).contains("a recover-pitr step is always non-destructive"));
}

/// A recover-pitr step naming an archive the inventory lacks fails check.
#[test]
fn an_unknown_archive_fails_check() {
    let inv = crate::inventory::Inventory::parse(
        "[[host]]\nname = \"h\"\ntransport = \"local\"\n[[database]]\nname = \"main\"\nurl = \"postgres://a@db/x\"\n[[archive]]\nname = \"wal\"\nkind = \"wal-dir\"\nhost = \"h\"\nbase_dir = \"/b\"\nwal_dir = \"/w\"\n",
        "inv.toml",
    )
    .unwrap();
    let rb = |archive: &str| {
        Runbook::parse(
            &format!(
                "{HEAD}[[step]]\nid = \"p\"\naction = \"recover-pitr\"\nexplain = \"x\"\ndatabase = \"main\"\narchive = \"{archive}\"\n"
            ),
            "rb.toml",
        )
        .unwrap()
    };
    let (errors, _) = validate_against(&rb("nosuch"), &inv);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .to_string()
            .contains("no archive named 'nosuch' in the inventory (known: 'wal')"),
        "{}",
        errors[0]
    );
    assert!(validate_against(&rb("wal"), &inv).0.is_empty());
}

/// The steps of a two-path runbook: `{choose}` decides, then `{pick}` (dump),
/// `{pitr}` and two `restore` steps (one per path), `{verify}` for both.
fn two_paths(
    choose: &str,
    pick: &str,
    restore_dump: &str,
    restore_pitr: &str,
    tail: &str,
) -> String {
    format!(
        "{HEAD}[[step]]\nid = \"stop\"\naction = \"stop-services\"\nexplain = \"s\"\ndatabase = \"{{db}}\"\n\
[[step]]\nid = \"snap\"\naction = \"snapshot\"\nexplain = \"s\"\ndatabase = \"{{db}}\"\n\
{choose}\
[[step]]\nid = \"pick\"\naction = \"pick-backup\"\nexplain = \"p\"\ncatalog = \"c\"\n{pick}\
[[step]]\nid = \"restore\"\naction = \"restore\"\nexplain = \"r\"\ndatabase = \"{{db}}\"\ncatalog = \"c\"\nbackup = \"{{pick.backup.path}}\"\n{restore_dump}\
[[step]]\nid = \"pitr\"\naction = \"recover-pitr\"\nexplain = \"p\"\ndatabase = \"{{db}}\"\npath = \"pitr\"\n\
[[step]]\nid = \"restore\"\naction = \"restore\"\nexplain = \"r\"\ndatabase = \"{{db}}\"\nbackup = \"{{pitr.dump}}\"\n{restore_pitr}\
[[step]]\nid = \"verify\"\naction = \"verify\"\nexplain = \"v\"\ndatabase = \"{{db}}\"\nrestored = \"{{restore.target_db}}\"\nrequires = [\"restored\"]\n{tail}"
    )
}

const CHOOSE: &str =
    "[[step]]\nid = \"choose\"\naction = \"choose-path\"\nexplain = \"c\"\ndatabase = \"{db}\"\n";

/// `path`: two steps share an id only on different paths (so
/// `{restore.target_db}` works after either restore); everything else
/// about paths is a located error at parse time (so `lifeline check` fails).
#[rstest]
#[case(
    CHOOSE,
    "path = \"dump\"\n",
    "path = \"dump\"\n",
    "path = \"pitr\"\n",
    "",
    None
)]
// an unknown path value
#[case(
    CHOOSE,
    "path = \"tape\"\n",
    "path = \"dump\"\n",
    "path = \"pitr\"\n",
    "",
    Some("'path': 'tape' is not a path: use \"pitr\"")
)]
// a path step before the step that decides the path
#[case(
    "",
    "path = \"dump\"\n",
    "path = \"dump\"\n",
    "path = \"pitr\"\n",
    "",
    Some("has path = \"dump\" but no earlier choose-path step decides the path")
)]
// a shared id without disjoint paths (both dump; one without a path)
#[case(
    CHOOSE,
    "path = \"dump\"\n",
    "path = \"dump\"\n",
    "path = \"dump\"\n",
    "",
    Some(
        "step id 'restore' is used twice; two steps may share an id only when their `path` values differ"
    )
)]
#[case(
    CHOOSE,
    "path = \"dump\"\n",
    "",
    "path = \"pitr\"\n",
    "",
    Some("step id 'restore' is used twice")
)]
// a step of both paths using a step of one path
#[case(
    CHOOSE,
    "path = \"dump\"\n",
    "path = \"dump\"\n",
    "path = \"pitr\"\n",
    "[[step]]\nid = \"done\"\naction = \"note\"\nexplain = \"d\"\ntext = \"from {pick.backup.path}\"\n",
    Some(
        "step 'done' uses '{pick...}', but step 'pick' runs only on path \"dump\" and this step also runs on path \"pitr\""
    )
)]
// ... fine when the step is on that path too
#[case(
    CHOOSE,
    "path = \"dump\"\n",
    "path = \"dump\"\n",
    "path = \"pitr\"\n",
    "[[step]]\nid = \"done\"\naction = \"note\"\nexplain = \"d\"\npath = \"dump\"\ntext = \"from {pick.backup.path}\"\n",
    None
)]
// two deciding steps; a deciding step on a path
#[case(&format!("{CHOOSE}{}", CHOOSE.replace("\"choose\"", "\"again\"")), "path = \"dump\"\n", "path = \"dump\"\n", "path = \"pitr\"\n", "", Some("a runbook has at most one choose-path step ('choose' is the first)"))]
#[case(&format!("{CHOOSE}path = \"pitr\"\n"), "path = \"dump\"\n", "path = \"dump\"\n", "path = \"pitr\"\n", "", Some("the choose-path step decides the path; it cannot belong to one"))]
fn paths_are_checked_at_parse_time(
    #[case] choose: &str,
    #[case] pick: &str,
    #[case] restore_dump: &str,
    #[case] restore_pitr: &str,
    #[case] tail: &str,
    #[case] err: Option<&str>,
) {
    let text = two_paths(choose, pick, restore_dump, restore_pitr, tail);
    match err {
        None => {
            let rb = Runbook::parse(&text, "rb.toml").unwrap_or_else(|e| panic!("{e}"));
            assert!(rb.has_paths());
            let both = rb.step_indices("restore");
            assert_eq!(both.len(), 2);
            assert_eq!(
                rb.step_on_path("restore", Some(PathChoice::Pitr)),
                Some(both[1])
            );
            assert_eq!(
                rb.step_on_path("restore", Some(PathChoice::Dump)),
                Some(both[0])
            );
            assert!(!rb.step("choose").unwrap().destructive);
        }
        Some(e) => assert!(errs(&text).contains(e), "want {e:?} in:\n{}", errs(&text)),
    }
}

/// A requirement met on one path only fails on the other.
#[test]
fn a_requirement_must_be_met_on_every_path() {
    let text = two_paths(
        CHOOSE,
        "path = \"dump\"\n",
        "path = \"dump\"\n",
        "path = \"pitr\"\n",
        "",
    );
    let pitr_restore = "[[step]]\nid = \"restore\"\naction = \"restore\"\nexplain = \"r\"\ndatabase = \"{db}\"\nbackup = \"{pitr.dump}\"\npath = \"pitr\"\n";
    assert!(text.contains(pitr_restore));
    let e = errs(&text.replace(pitr_restore, ""));
    assert!(
        e.contains("requires 'restored', but no earlier restore step")
            && e.contains("can provide it on path \"pitr\""),
        "{e}"
    );
}

/// Shared ids must share the action, so `{id.field}` means one thing.
#[test]
fn steps_sharing_an_id_share_the_action() {
    let text = two_paths(
        CHOOSE,
        "path = \"dump\"\n",
        "path = \"dump\"\n",
        "path = \"pitr\"\n",
        "[[step]]\nid = \"x\"\naction = \"note\"\nexplain = \"n\"\npath = \"dump\"\n[[step]]\nid = \"x\"\naction = \"probe\"\nexplain = \"p\"\npath = \"pitr\"\ndatabase = \"{db}\"\n",
    );
    let e = errs(&text);
    assert!(
        e.contains("step id 'x' is shared by a note step and a probe step"),
        "{e}"
    );
}

/// The four incident runbooks decide the path before anything starts and
/// offer both: pick + restore on the dump path, recover-pitr + restore of
/// its dump on the pitr path, everything after shared.
#[rstest]
#[case("rogue-sync-wipe")]
#[case("table-wiped")]
#[case("database-missing")]
#[case("migration-reset")]
fn incident_runbooks_offer_both_paths(#[case] id: &str) {
    let rb = find(id, None).unwrap();
    let choose = rb.step_index("choose").expect("a choose-path step");
    assert_eq!(rb.steps[choose].action, Action::ChoosePath);
    let stop = rb.step_index("stop-writers").unwrap();
    assert!(choose < stop, "decided before anything starts");
    assert_eq!(
        rb.param("path").unwrap().default.as_ref().unwrap().value,
        "auto"
    );
    let on = |p| {
        rb.steps
            .iter()
            .filter(|s| s.path == Some(p))
            .map(|s| (s.id.as_str(), s.action))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        on(PathChoice::Dump),
        vec![
            ("pick", Action::PickBackup),
            ("restore", Action::Restore),
            ("done", Action::Note)
        ]
    );
    assert_eq!(
        on(PathChoice::Pitr),
        vec![
            ("pitr", Action::RecoverPitr),
            ("restore", Action::Restore),
            ("done", Action::Note)
        ]
    );
    let pitr_restore = rb.step_on_path("restore", Some(PathChoice::Pitr)).unwrap();
    assert_eq!(
        rb.steps[pitr_restore].backup.as_ref().unwrap().value.raw,
        "{pitr.dump}"
    );
    assert!(rb.steps[pitr_restore].catalog.is_none());
}
