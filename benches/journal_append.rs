//! Journal append+fsync throughput vs the physical limit of the design:
//! a plain `write` + `fdatasync` loop of the very same bytes, same disk,
//! same run; and signed (a checkpoint every 32 records) vs unsigned appends.
//! `cargo bench --bench journal_append [-- N]`.

use std::io::Write;
use std::time::Instant;

use lifeline::journal::{Entry, Journal, kinds};
use lifeline::redact::Redactor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::Builder::new()
        .prefix("lifeline-bench-")
        .tempdir_in(std::env::current_dir()?)?;
    let redactor = Redactor::new();
    redactor.add_secret("bench-secret-value");

    let append_n = |path: &std::path::Path,
                    signed: bool|
     -> Result<f64, Box<dyn std::error::Error>> {
        let mut j = Journal::open(path, "bench", "operator", redactor.clone())?;
        if !signed {
            j.set_signer(None);
        }
        let t = Instant::now();
        for i in 0..n {
            j.append(
                Entry::new(kinds::COMMAND, format!("ran step {i} on host prod"))
                    .step("stop-services")
                    .target("prod:5432/TovPlay")
                    .command("systemctl stop db-realtime-sync.service && systemctl disable --now db-realtime-sync.timer")
                    .exit(0)
                    .duration_ms(12)
                    .data(serde_json::json!({"stdout": "Removed /etc/systemd/system/multi-user.target.wants/db-realtime-sync.service.", "i": i})),
            )?;
        }
        j.checkpoint()?;
        let s = t.elapsed().as_secs_f64();
        drop(j);
        Ok(s)
    };
    // Unsigned first (its bytes are the plain loop's input), then signed.
    let jpath = dir.path().join("journal.jsonl");
    let journal_s = append_n(&jpath, false)?;
    let spath = dir.path().join("signed.jsonl");
    let signed_s = append_n(&spath, true)?;
    let checkpoints = lifeline::journal::read_records(&spath)?
        .iter()
        .filter(|r| r.kind == kinds::CHECKPOINT)
        .count();

    // The same bytes through a plain write + fdatasync loop.
    let bytes = std::fs::read(&jpath)?;
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    let ppath = dir.path().join("plain.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&ppath)?;
    let t = Instant::now();
    for l in &lines {
        f.write_all(l)?;
        f.sync_data()?;
    }
    let plain_s = t.elapsed().as_secs_f64();

    let per = |s: f64| s * 1e6 / n as f64;
    println!(
        "records: {n}, bytes: {} ({} B/record)",
        bytes.len(),
        bytes.len() / n
    );
    println!(
        "journal append (redact+seal+write+fdatasync): {:.3} s, {:.0} appends/s, {:.1} us/append",
        journal_s,
        n as f64 / journal_s,
        per(journal_s)
    );
    println!(
        "plain write+fdatasync of the same bytes:      {:.3} s, {:.0} writes/s,  {:.1} us/write",
        plain_s,
        n as f64 / plain_s,
        per(plain_s)
    );
    println!("ratio journal/plain: {:.2}x", journal_s / plain_s);
    println!(
        "signed journal ({checkpoints} ed25519 checkpoints, one every {}): {:.3} s, {:.1} us/append",
        lifeline::journal::CHECKPOINT_EVERY,
        signed_s,
        per(signed_s)
    );
    println!("ratio signed/unsigned: {:.2}x", signed_s / journal_s);
    Ok(())
}
