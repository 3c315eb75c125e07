//! stop-services and start-services against the rogue-sync lab reached over
//! its own sshd: the sync, its cron-style restarter (5 s) and its watchdog
//! (2 s) are real background processes with pidfiles, listed in the lab
//! inventory as `process` services. Stopping only the sync fails the hold;
//! stopping all three passes it; start-services keeps the hazards off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use lifeline::actions::RealActions;
use lifeline::engine::actions::{Actions, Output};
use lifeline::engine::types::*;
use lifeline::inventory::Inventory;
use lifeline::lab::{Lab, LabOptions, Scenario};
use lifeline::redact::Redactor;

fn targets(inv: &Inventory) -> (HostTarget, DbTarget) {
    let h = HostTarget {
        name: "lab".into(),
        spec: inv.host("lab").unwrap().clone(),
    };
    let spec = inv.database("main").unwrap().clone();
    let d = DbTarget {
        name: "main".into(),
        url: spec.pg_url().unwrap().clone(),
        spec,
    };
    (h, d)
}

fn output() -> (
    Output,
    tokio::sync::broadcast::Receiver<lifeline::engine::events::EngineEvent>,
) {
    let (tx, rx) = tokio::sync::broadcast::channel(8192);
    (Output::new(tx, 0, "t", Redactor::new()), rx)
}

#[test]
fn rogue_sync_lab_over_ssh_hold_fails_until_every_mechanism_is_stopped() {
    let lab = Lab::build(LabOptions {
        scenario: Scenario::RogueSync,
        ssh: true,
        ..LabOptions::default()
    })
    .unwrap_or_else(|e| panic!("build lab: {e}"));
    let inv = Inventory::load(&lab.inventory_path).unwrap();
    let redactor = Redactor::new();
    inv.register_secrets(&redactor);
    let a = RealActions::new(inv.clone(), redactor);
    let (host, db) = targets(&inv);
    let svc = |n: &str| inv.service(n).unwrap().clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hazards_running = |lab: &Lab| {
        lab.live_processes()
            .into_iter()
            .filter(|p| p.hazard)
            .map(|p| p.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(hazards_running(&lab).len(), 3);

    // 1. Only the sync: its restarter starts it again within 5 s.
    let (out, _rx) = output();
    let o = rt
        .block_on(a.stop_services(
            &StopRequest {
                database: None,
                hosts: vec![host.clone()],
                services: vec![svc("db-realtime-sync")],
                hold_s: 14,
            },
            &out,
        ))
        .unwrap();
    let text = out.kept().join("\n");
    assert_eq!(o.stopped.len(), 1, "{o:#?}\n{text}");
    assert!(!o.hold_passed(), "{o:#?}\n{text}");
    assert!(
        o.still_active
            .iter()
            .any(|s| s.name == "db-realtime-sync" && s.detail.contains("running again")),
        "{o:#?}"
    );

    // 2. All three, watchdog first, with the database watched: nothing comes back.
    let (out, _rx) = output();
    let o = rt
        .block_on(a.stop_services(
            &StopRequest {
                database: Some(db.clone()),
                hosts: vec![host.clone()],
                services: vec![
                    svc("sync-watchdog"),
                    svc("sync-restarter"),
                    svc("db-realtime-sync"),
                ],
                hold_s: 10,
            },
            &out,
        ))
        .unwrap();
    let text = out.kept().join("\n");
    assert!(o.hold_passed(), "{o:#?}\n{text}");
    let mut names: Vec<&str> = o.stopped.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["db-realtime-sync", "sync-restarter", "sync-watchdog"],
        "{text}"
    );
    assert!(o.stopped.iter().all(|s| s.hazard), "{o:#?}");
    assert!(text.contains("kill -s STOP -- "), "{text}");
    assert!(hazards_running(&lab).is_empty());

    // 3. Picked one by one, all three start again (the inventory's start commands).
    let (out, _rx) = output();
    let s = rt
        .block_on(a.start_services(
            &StartRequest {
                database: Some(db.clone()),
                stopped: o.stopped.clone(),
                picked: vec![
                    "db-realtime-sync".into(),
                    "sync-restarter".into(),
                    "sync-watchdog".into(),
                ],
            },
            &out,
        ))
        .unwrap();
    // The sync may have been down when step 2 ran (between two restarts):
    // then it is not started by name, and its restarter brings it back.
    let text = out.kept().join("\n");
    assert!(
        s.started.contains(&"sync-watchdog".to_string())
            && s.started.contains(&"sync-restarter".to_string()),
        "{s:#?}\n{text}"
    );
    assert!(
        s.started.contains(&"db-realtime-sync".to_string())
            || s.kept_off
                .iter()
                .any(|k| k.name == "db-realtime-sync" && k.reason.contains("not running")),
        "{s:#?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while hazards_running(&lab).len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            hazards_running(&lab)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // 4. What the engine asks for from the runbook (the database's writer
    //    by name; discovery finds its restarter and watchdog): all stopped.
    let (out, _rx) = output();
    let o = rt
        .block_on(a.stop_services(
            &StopRequest {
                database: Some(db.clone()),
                hosts: vec![host.clone()],
                services: vec![svc("db-realtime-sync")],
                hold_s: 8,
            },
            &out,
        ))
        .unwrap();
    let text = out.kept().join("\n");
    assert!(o.hold_passed(), "{o:#?}\n{text}");
    let mut names: Vec<&str> = o.stopped.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["db-realtime-sync", "sync-restarter", "sync-watchdog"],
        "{text}"
    );
    assert!(hazards_running(&lab).is_empty());

    // 5. start-services: all three are hazards and stay off.
    let (out, _rx) = output();
    let s = rt
        .block_on(a.start_services(
            &StartRequest {
                database: Some(db),
                stopped: o.stopped.clone(),
                picked: vec![],
            },
            &out,
        ))
        .unwrap();
    assert!(s.started.is_empty(), "{s:#?}");
    assert_eq!(s.kept_off.len(), 3);
    std::thread::sleep(Duration::from_secs(3));
    assert!(hazards_running(&lab).is_empty());
    drop(rt);
    lab.teardown().unwrap();
}
