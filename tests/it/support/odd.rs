//! Odd programs for discovery tests: a makeself-like program with a NUL-byte
//! payload, a script whose name holds ESC sequences, a 10 MB script and a
//! script with invalid UTF-8 that writes to a database. Each runs as a real
//! process in its own process group, killed on drop; all under `dir`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::KillGroup;

pub struct Odd {
    pub dir: PathBuf,
    pub payload: String,
    pub big: String,
    pub latin: String,
    /// The database latin.sh writes to: unique, so that no other run's
    /// inventory on this shared machine maps it (their stop would end it).
    pub latin_db: String,
    /// The ESC script's path as ps prints it (controls shown as '?').
    pub esc_as_ps: String,
    _procs: Vec<KillGroup>,
}

const HEAD: &[u8] = b"#!/bin/sh\nsleep 3000\nexit 0\n";

fn start(script: &Path) -> KillGroup {
    let child = Command::new("/bin/sh")
        .arg(script)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillGroup(child)
}

/// Plants and starts the odd programs under `dir` (created).
pub fn odd_programs(dir: &Path) -> Odd {
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.display().to_string();
    // A makeself-like installer: a shell header, then binary data whose
    // bytes look like a script path holding a NUL.
    let payload = dir.join("payload.run");
    let mut bytes = HEAD.to_vec();
    bytes.extend_from_slice(b"/bin/sh /opt/pay\0load/inst.sh\n\0\x01\x02\xff\xfe\x1b[2J\n");
    bytes.extend((0..=255u8).cycle().take(4096));
    bytes.extend_from_slice(b"\nsh /tmp/x\0y.sh\n");
    std::fs::write(&payload, &bytes).unwrap();
    // A script whose file name holds terminal escape sequences.
    let esc_name = std::ffi::OsStr::from_bytes(b"e\x1b[31m\x1b]0;pwned\x07vil.sh");
    let esc = dir.join(esc_name);
    std::fs::write(&esc, HEAD).unwrap();
    // A 10 MB script: one line of 10 MB after the header.
    let big = dir.join("big.sh");
    let mut b = HEAD.to_vec();
    b.extend_from_slice(b"# ");
    b.extend(std::iter::repeat_n(b'A', 10 << 20));
    b.push(b'\n');
    std::fs::write(&big, &b).unwrap();
    // Invalid UTF-8 and controls in a script that writes to a database.
    let latin = dir.join("latin.sh");
    let mut l = HEAD.to_vec();
    l.extend_from_slice(b"# caf\xe9 \xff\xfe \x1b]0;title\x07\n");
    let latin_db = format!(
        "odd_{}",
        dir.display()
            .to_string()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    l.extend_from_slice(
        format!("psql -h db.example.net -U app -d {latin_db} -c 'DELETE FROM \"User\"' # ")
            .as_bytes(),
    );
    l.extend_from_slice(b"\xc3\x28\n");
    std::fs::write(&latin, &l).unwrap();
    let procs = vec![start(&payload), start(&esc), start(&big), start(&latin)];
    // Wait until ps shows all four.
    let want = [
        format!("{d}/payload.run"),
        format!("{d}/big.sh"),
        format!("{d}/latin.sh"),
        format!("{d}/e?[31m?]0;pwned?vil.sh"),
    ];
    for _ in 0..200 {
        let ps = Command::new("ps").args(["-eo", "args="]).output().unwrap();
        let text = String::from_utf8_lossy(&ps.stdout).to_string();
        if want.iter().all(|w| text.contains(w.as_str())) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    Odd {
        dir: dir.to_path_buf(),
        payload: payload.display().to_string(),
        big: big.display().to_string(),
        latin: latin.display().to_string(),
        latin_db,
        esc_as_ps: want[3].clone(),
        _procs: procs,
    }
}

/// What discovery must say about the odd programs: the writer among them is
/// found, the others are listed as unreadable with a short reason, and no
/// NUL byte reaches what discovery reports (ESC is kept exact).
pub fn assert_odd_items(d: &lifeline::probe::Discovery, odd: &Odd) {
    let json = serde_json::to_string(d).unwrap();
    assert!(!json.contains("\\u0000"), "a NUL byte in the discovery");
    // ESC is kept exact (JSON escapes it); terminals get it through the one sanitiser.
    let latin = d
        .services
        .iter()
        .find(|s| s.scripts.contains(&odd.latin))
        .unwrap_or_else(|| panic!("latin.sh not found: {:#?}", d.services));
    assert!(
        latin
            .databases_reached
            .iter()
            .any(|r| r.display() == format!("db.example.net:5432/{}", odd.latin_db)),
        "{:?}",
        latin.databases_reached
    );
    let why = |item: &str| {
        d.unreadable
            .iter()
            .find(|u| u.item == item)
            .map(|u| u.reason.clone())
            .unwrap_or_else(|| panic!("'{item}' not listed as unreadable: {:#?}", d.unreadable))
    };
    assert!(
        why(&odd.payload).contains("binary"),
        "{}",
        why(&odd.payload)
    );
    assert!(why(&odd.big).contains("too large"), "{}", why(&odd.big));
    // ps shows the ESC bytes as '?' (or '.', by locale) and joins arguments
    // with spaces; the ';' of the OSC sequence ends the word as a shell
    // would read it.
    let esc = d
        .unreadable
        .iter()
        .find(|u| {
            u.item.starts_with(&format!("{}/e", odd.dir.display())) && u.item.contains("[31m")
        })
        .unwrap_or_else(|| panic!("ESC script not listed: {:#?}", d.unreadable));
    assert_eq!(esc.reason, "not a readable file");
    for u in &d.unreadable {
        assert!(u.reason.len() < 200, "long reason: {}", u.reason);
    }
}
