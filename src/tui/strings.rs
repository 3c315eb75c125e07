//! Every word the console shows, in one place, so wording stays consistent
//! and reviewable. Formatting of ages, sizes and counts lives here too.
//! Nothing here reads the model's clock: callers pass seconds.

use super::keys::Action;
use super::model::{Health, Mode, ServiceKind, StepState, View};

pub const APP: &str = "lifeline";

// Views.
pub fn view_name(v: View) -> &'static str {
    match v {
        View::Overview => "Overview",
        View::Services => "Services",
        View::Timeline => "Timeline",
        View::Runbook => "Runbook",
        View::Journal => "Journal",
    }
}

// Header.
pub fn mode(m: Mode) -> &'static str {
    match m {
        Mode::Live => "LIVE",
        Mode::Drill => "DRILL",
    }
}
pub const READONLY: &str = "READ-ONLY";
pub const NO_ENV: &str = "NO ENV LABEL";
pub const DISCONNECTED: &str = "ENGINE GONE";
pub const INCIDENT: &str = "incident";
pub const NO_INCIDENT: &str = "no incident";
pub const OPERATOR: &str = "op";
pub const ACTING_ON: &str = "acting on";
pub const VIEWING: &str = "viewing";
pub const NO_DATABASE: &str = "no database selected (:db NAME)";
pub const SYSTEM: &str = "system";
pub const DB_OID: &str = "oid";
pub const UTC: &str = "UTC";
pub const WAITING_FOR_YOU: &str = "WAITING FOR YOU";
/// Which key acknowledges the alerts shown in the header.
pub fn ack_hint(key: &str) -> String {
    format!("{key}: acknowledge")
}
/// Header text once every alert is acknowledged.
pub fn alerts_acked(n: usize) -> String {
    format!("{} acknowledged", alerts(n))
}
/// Status line after an acknowledgement was journaled.
pub fn acked(n: usize, seq: u64) -> String {
    format!("{} acknowledged (journal #{seq})", alerts(n))
}
pub const NOTHING_TO_ACK: &str = "no alert to acknowledge";
/// Header badge: `▲ look-alike 'tovplay'` or `▲ 3 look-alikes`.
pub fn lookalikes_badge(glyph: &str, n: usize, first: &str) -> String {
    if n == 1 {
        format!("{glyph} look-alike '{first}'")
    } else {
        format!("{glyph} {n} look-alikes")
    }
}

/// Databases panel: one line per look-alike of a watched database.
pub fn lookalike_line(glyph: &str, l: &crate::lookalike::LookAlike) -> String {
    let kinds: Vec<&str> = l.kinds.iter().map(|k| k.as_str()).collect();
    format!(
        "{glyph} LOOK-ALIKE on this server: '{}' ({}){}",
        l.shown,
        kinds.join(", "),
        l.sessions
            .map(|n| format!(", {n} session(s)"))
            .unwrap_or_default()
    )
}

pub const RETRY_WHAT: &str =
    "r retries a failed step: put the cursor on the step the run stopped at (the run must be over)";

pub fn alerts(n: usize) -> String {
    if n == 1 {
        "1 alert".into()
    } else {
        format!("{n} alerts")
    }
}

// Ages and staleness.
pub const STALE: &str = "STALE";
pub const NEVER: &str = "never";
pub fn ago(secs: i64) -> String {
    format!("{} ago", duration(secs))
}
pub fn no_answer(secs: i64) -> String {
    format!("no answer for {}", duration(secs))
}
pub fn answered(secs: i64) -> String {
    format!("answered {}", ago(secs))
}
pub fn sampled(secs: i64) -> String {
    format!("sampled {}", ago(secs))
}
pub fn updated(secs: i64) -> String {
    format!("updated {}", ago(secs))
}

/// "12 s", "4 min 05 s", "2 h 05 min", "3 d 4 h".
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        format!("{s} s")
    } else if s < 600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else if s < 86_400 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{} d {} h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// "00:14:32" (hours grow past 99).
pub fn clock(secs: i64) -> String {
    let s = secs.max(0);
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// 1234567 -> "1,234,567".
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 1234567 -> "1.2M"; small numbers as they are.
pub fn compact(n: i64) -> String {
    let a = n.unsigned_abs() as f64;
    let sign = if n < 0 { "-" } else { "" };
    if a < 10_000.0 {
        format!("{n}")
    } else if a < 1e6 {
        format!("{sign}{:.1}k", a / 1e3)
    } else if a < 1e9 {
        format!("{sign}{:.1}M", a / 1e6)
    } else {
        format!("{sign}{:.1}G", a / 1e9)
    }
}

/// Binary units: "512 B", "1.5 KiB", "2.0 GiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn rate(bytes_per_s: f64) -> String {
    format!("{}/s", bytes(bytes_per_s as u64))
}

// Hosts.
pub const UP: &str = "up";
pub const DOWN: &str = "down";
pub const PROBING: &str = "probing";
pub fn latency(ms: u64) -> String {
    format!("{ms} ms")
}
pub fn last_answer_at(hhmmss: &str) -> String {
    format!("last answer {hhmmss}")
}

// Databases.
pub fn health(h: Health) -> &'static str {
    match h {
        Health::Unknown => "unknown",
        Health::Healthy => "healthy",
        Health::RowsDropped => "ROWS DROPPED",
        Health::Empty => "EMPTY",
        Health::Missing => "DATABASE MISSING",
        Health::ServerDown => "SERVER DOWN",
    }
}
pub fn rows(n: i64) -> String {
    if n == 1 {
        "1 row".into()
    } else {
        format!("{} rows", count(n))
    }
}
pub fn tables(n: usize) -> String {
    if n == 1 {
        "1 table".into()
    } else {
        format!("{n} tables")
    }
}

// Overview sections.
pub const HAZARDS: &str = "Hazards: jobs that can write to or restore a database";
pub const NO_HAZARDS: &str = "no hazards found";
pub const HOSTS: &str = "Hosts";
pub const NO_HOSTS: &str = "no hosts yet";
pub const DATABASES: &str = "Databases";
pub const NO_DATABASES: &str = "no databases yet";
pub const STOPPED_BY_RUNBOOK: &str = "stopped by runbook";

// Services.
pub fn service_kind(k: ServiceKind) -> &'static str {
    match k {
        ServiceKind::Systemd => "unit",
        ServiceKind::Timer => "timer",
        ServiceKind::Cron => "cron",
        ServiceKind::Container => "container",
        ServiceKind::Process => "process",
    }
}
pub const ACTIVE: &str = "active";
pub const INACTIVE: &str = "inactive";
pub const NO_SERVICES: &str = "no services discovered yet";
pub const NO_DB: &str = "no database";
pub fn host_services(n: usize, hazards: usize) -> String {
    let s = if n == 1 { "service" } else { "services" };
    match hazards {
        0 => format!("{n} {s}"),
        1 => format!("{n} {s}, 1 hazard"),
        h => format!("{n} {s}, {h} hazards"),
    }
}

// Timeline.
pub const NO_SAMPLES: &str = "no row-count samples for this database yet";
pub const TABLES: &str = "Tables";
pub const GONE: &str = "GONE";
pub const ALERT: &str = "alert";
pub const STEP: &str = "step";
pub const NOTE: &str = "note";
pub const INCIDENT_LINE: &str = "incident";
pub const FOLLOWING: &str = "follows now";
pub const ESTIMATE: &str = "~";
/// A zoom span: "5 min", "1 h", "7 d".
pub fn span(secs: i64) -> String {
    if secs % 86_400 == 0 && secs > 86_400 {
        format!("{} d", secs / 86_400)
    } else if secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} min", secs / 60)
    }
}
pub fn window(span_s: i64, end: &str, following: bool) -> String {
    if following {
        format!("last {}, {}", span(span_s), FOLLOWING)
    } else {
        format!("{} to {end}", span(span_s))
    }
}
pub fn was(before: i64) -> String {
    format!("was {}", count(before))
}
pub fn oid(oid: u32) -> String {
    format!("oid {oid}")
}

// Runbook.
pub fn step_state(s: StepState) -> &'static str {
    match s {
        StepState::Pending => "pending",
        StepState::Running => "running",
        StepState::Done => "done",
        StepState::Failed => "FAILED",
        StepState::Interrupted => "interrupted",
        StepState::Skipped => "skipped",
    }
}
pub const DESTRUCTIVE: &str = "destructive";
pub const STEPS: &str = "Steps";
pub const EXPLANATION: &str = "What this step does";
pub const PREVIEW: &str = "Exactly what runs";
pub const PROGRESS: &str = "Progress";
pub const OUTPUT: &str = "Output";
pub const NO_OUTPUT: &str = "no output yet";
pub fn failed_output(step: &str, line: usize) -> String {
    format!("step '{step}' FAILED: its first error, line {line} of its output; r retries the step")
}
pub fn output_more(n: usize) -> String {
    format!("... {n} more line(s) below")
}
pub const NO_RUNBOOK: &str = "No runbook running. Pick one and press Enter to see its plan (s starts it), or type :runbook NAME.";
pub const NO_RUNBOOKS: &str = "No runbooks known yet.";
pub const WHEN: &str = "when";
pub const WAITING_CONFIRM: &str = "Waiting for your confirmation: press Enter to answer.";
// Plan before start and the suggested runbook (issue 19).
pub const SUGGESTED: &str = "suggested";
pub fn suggested(reason: &str) -> String {
    format!("suggested: {reason}")
}
pub fn plan_title(runbook: &str) -> String {
    format!("Plan: {runbook} (nothing has run)")
}
pub const PLAN_HINT: &str = "s: start  j/k PgUp/PgDn: scroll  Esc: close";
pub const PLAN_HINT_REFUSED: &str = "cannot start  Esc: close";
pub const PLAN_BUILDING: &str = "building the plan (every step resolved, nothing run)...";
pub fn plan_summary(steps: usize, destructive: usize, acting: usize, db: Option<&str>) -> String {
    let on = db
        .map(|d| format!(" on database '{d}'"))
        .unwrap_or_default();
    format!(
        "{steps} step(s){on}: {destructive} ask for a typed confirmation first; {acting} act without one (stop or start services, snapshot, commands); {} only read",
        steps.saturating_sub(destructive + acting)
    )
}
pub const CONFIRM_CHANGES: &str = "What this will do:";
pub const CONFIRM_COMMANDS_ELSEWHERE: &str =
    "the exact commands: Runbook view, 'Exactly what runs' (Esc puts this aside)";
/// The restore's consequence in its typed confirmation: which backup, and
/// what it loses.
pub fn restores_backup(name: &str, taken: &str, rpo_s: Option<i64>) -> String {
    let loss = match rpo_s {
        Some(r) => loses(r),
        None => "its loss is unknown (no incident time or backup time)".to_string(),
    };
    format!("RESTORES {name}, taken {taken}: {loss}")
}
pub fn confirm_more(n: usize) -> String {
    format!("... {n} more line(s): Esc puts this aside, the Runbook view shows them all")
}
// The backup panel (issue 19).
pub const BACKUPS_TITLE: &str = "Backups: the candidates of the last pick";
pub const NO_PICK_YET: &str =
    "no backup was picked yet: a runbook's pick-backup step judges the candidates";
pub const NO_CANDIDATES: &str = "the catalog listed no backup";
pub const CHOSEN: &str = "chosen";
pub const EXCLUDED: &str = "excluded";
pub const ELIGIBLE: &str = "eligible";
pub const TAKEN: &str = "taken";
pub const TAKEN_UNKNOWN: &str = "at an unknown time";
pub const FROM_NAME: &str = "from its name";
pub const FROM_HEADER: &str = "from its dump header";
pub const FROM_MTIME: &str = "from the file's mtime only: a hint, not proof";
pub const CONTENT: &str = "content";
pub const ROWS_PER_TABLE: &str = "rows";
pub fn excluded_because(why: &str) -> String {
    format!("why: {why}")
}
pub fn loses(rpo_s: i64) -> String {
    format!(
        "loses {} of changes (incident time - backup time)",
        duration(rpo_s)
    )
}
pub const BACKUPS_HINT: &str =
    "esc close  j/k candidate  c choose for the restore  pgup/pgdn scroll";
pub const CURSOR_MARK: &str = ">";
pub const PRESELECTED: &str = "preselected by the pick";
pub fn chosen_by_you(reason: &str) -> String {
    format!("chosen by you instead of the preselection: {reason}")
}
pub const CHOOSE_WHEN: &str = "another backup is chosen at the restore's typed confirmation: wait for it (Esc puts it aside), then c here";
pub fn choose_not_eligible(name: &str, why: &str) -> String {
    format!("'{name}' is not eligible: {why}")
}
pub fn choose_already(name: &str) -> String {
    format!("'{name}' is already the backup the restore reads")
}
pub const CHOOSE_STALE: &str =
    "the restore waiting for its confirmation is held to another pick: reopen the panel";
pub const CHOOSE_TITLE: &str = "Choose this backup for the restore";
pub const CHOOSE_HINT: &str = "enter next  esc back to the candidates";
pub fn choose_what(name: &str, preselected: &str) -> String {
    format!(
        "Restore '{name}' instead of '{preselected}'. The choice is journaled with your reason; the restore's confirmation is then asked again, naming it."
    )
}
pub const CHOOSE_REASON: &str = "Why this backup? (journaled)";
pub const CHOOSE_REASON_EMPTY: &str = "say why: the reason is journaled with the choice";
pub fn choose_suspect(why: &str, name: &str) -> String {
    format!("SUSPECT: {why}. Type its name '{name}' to choose it anyway:")
}
pub fn choose_mismatch(name: &str, typed: &str) -> String {
    format!("typed '{typed}', not '{name}': nothing was chosen")
}
pub fn choose_sent(name: &str) -> String {
    format!(
        "backup '{name}' chosen: the engine journals it and asks the restore's confirmation again"
    )
}
pub fn stake_backup(name: &str, taken: &str) -> String {
    format!("Backup: {name}, taken {taken}")
}
pub fn stake_rows_lost(list: &str) -> String {
    format!("rows lost per table: {list}")
}
pub const STAKE_ROWS_NONE: &str = "rows lost per table: none against the pick's baseline";
pub const STAKE_ROWS_UNKNOWN: &str =
    "rows lost per table: unknown (the backup's rows were not counted)";
pub fn stake_others(n: usize) -> String {
    format!("{n} other eligible backup(s): Esc, then :backups and c chooses another")
}
pub fn backups_head(n: usize, step: &str, seq: u64, incident: Option<String>) -> String {
    let at = incident
        .map(|t| format!(", against the incident time {t}"))
        .unwrap_or_default();
    format!("{n} candidate(s) judged by step '{step}' (journal #{seq}){at}")
}
// The live hold (issue 19).
pub fn hold_watching(services: usize, hosts: &str) -> String {
    if hosts.is_empty() {
        "watching the database's sessions and table writes".to_string()
    } else {
        format!(
            "watching {services} service(s) on {hosts} (probed again every few seconds) and the database's sessions and table writes"
        )
    }
}
pub fn hold_nothing_back(last_probe_s: i64) -> String {
    format!("nothing came back so far (last probe {last_probe_s} s ago)")
}
pub fn hold_came_back(n: usize) -> String {
    format!("{n} came back during the hold (stopped again; the hold fails):")
}
// Reading (issue 19).
pub fn zoom_limit(span_s: i64, closest: bool) -> String {
    let span = duration(span_s).replace(" 00 s", "").replace(" 0 h", "");
    if closest {
        format!("closest zoom: {span} on screen ('-' widens)")
    } else {
        format!("widest zoom: {span} on screen ('+' narrows)")
    }
}
pub const RECREATED_MARK: &str = "(re-created)";
pub fn recreated(oids: usize) -> String {
    format!("re-created: {oids} OIDs merged into one line")
}
pub fn more_hazards(n: usize) -> String {
    format!("(+{n} more hazard(s): Enter)")
}
pub const PAUSED: &str = "PAUSED (p resumes)";
pub fn paused(held: usize) -> String {
    format!("paused: numbers frozen, {held} update(s) held (p resumes)")
}
pub fn resumed(n: usize) -> String {
    format!("resumed: {n} held update(s) applied")
}
pub fn filter_shown(f: &str) -> String {
    format!(" filter '{f}' (esc clears) ")
}
pub const PAUSE_OVERFLOW: &str =
    "resumed: too many updates held while paused; they are all applied now";
pub const PLAN_READS: &str = "reads only, no confirmation";
pub const PLAN_ACTS: &str = "ACTS without a typed confirmation (runs as soon as it is reached)";
pub fn plan_confirm(typed: &str) -> String {
    format!("CHANGES: asks you to type '{typed}' first")
}
pub const PLAN_CONFIRM_LATER: &str = "CHANGES: asks for a typed confirmation first";
pub const PLAN_TARGET: &str = "touches";
pub const PLAN_REQUIRES: &str = "requires";
pub const PLAN_RUNS: &str = "runs";
pub const PLAN_LATER: &str = "resolved when it runs";
pub const PLAN_START_NOW: &str = "press s to start it, Esc to close";
pub fn plan_sent(name: &str) -> String {
    format!("building the plan of '{name}'...")
}
pub fn step_of(n: usize, total: usize) -> String {
    format!("Step {n}/{total}")
}
pub fn eta(secs: u64) -> String {
    format!("ETA {}", duration(secs as i64))
}
pub fn of_total(done: &str, total: &str) -> String {
    format!("{done} of {total}")
}
pub fn running_for(secs: i64) -> String {
    format!("running {}", duration(secs))
}

// Journal.
pub const NO_RECORDS: &str = "no journal records yet";
pub fn journal_title(total: usize, shown: usize, filter: &str) -> String {
    if filter.is_empty() {
        format!("Journal: {total} records, newest last")
    } else {
        format!("Journal: {shown} of {total} records match '{filter}'")
    }
}
pub fn filter_title(filter: &str) -> String {
    format!("filter '{filter}'")
}

// Details popup.
pub const DETAILS: &str = "Details";
// Field names in the details popup.
pub const F_ACTION: &str = "action";
pub const F_ADDRESS: &str = "address";
pub const F_COMMAND: &str = "command";
pub const F_DATA: &str = "data";
pub const F_DATABASE: &str = "database";
pub const F_DATABASES: &str = "databases";
pub const F_DURATION: &str = "duration";
pub const F_ERROR: &str = "error";
pub const F_EXIT: &str = "exit";
pub const F_FINISHED: &str = "finished";
pub const F_HASH: &str = "hash";
pub const F_HEALTH: &str = "health";
pub const F_HOST: &str = "host";
pub const F_KIND: &str = "kind";
pub const F_OID: &str = "oid";
pub const F_OPERATOR: &str = "operator";
pub const F_PREV: &str = "prev";
pub const F_SEQ: &str = "seq";
pub const F_STARTED: &str = "started";
pub const F_STATE: &str = "state";
pub const F_STEP: &str = "step";
pub const F_SUMMARY: &str = "summary";
pub const F_SYSTEM_ID: &str = "system id";
pub const F_TARGET: &str = "target";
pub const F_TIME: &str = "time";
pub const F_TITLE: &str = "title";
pub const CLOSE_HINT: &str = "esc close  j/k scroll";

// Confirm dialog.
pub const CONFIRM_TITLE: &str = "Confirm destructive step";
pub const QUESTION_TITLE: &str = "Confirm step";
pub fn confirm_type(name: &str) -> String {
    format!("Type the database name '{name}' to confirm (case matters):")
}
pub fn confirm_mismatch(expect: &str, typed: &str) -> String {
    format!(
        "'{typed}' is not '{expect}'. Type the database name exactly as shown, or Esc to put this aside."
    )
}
pub const CONFIRM_HINT: &str = "enter confirm  esc put aside (the step keeps waiting)";
pub const YES_NO_HINT: &str = "y yes  n/esc put aside";
pub const CONFIRM_PUT_ASIDE: &str =
    "Confirmation put aside; the step keeps waiting. Runbook view (4), Enter to answer.";
pub const CONFIRMED_SENT: &str = "Confirmation sent.";

// Quit and abort.
pub const QUIT_TITLE: &str = "Quit?";
pub fn quit_running(step: &str) -> String {
    format!(
        "Step '{step}' is running. Quit the console anyway? The journal keeps every line written so far."
    )
}
pub const QUIT_HINT: &str = "y quit  n/esc stay";
pub const ABORT_TITLE: &str = "Abort runbook?";
pub fn abort_ask(step: &str) -> String {
    format!("Abort the runbook at step '{step}'? The engine stops it and journals the abort.")
}
pub const ABORT_HINT: &str = "y abort  n/esc keep going";
pub const NOTHING_TO_ABORT: &str = "No runbook is running: nothing to abort.";

// Messages.
pub const READONLY_REFUSED: &str =
    "Read-only console (--readonly): actions are refused. Restart without --readonly to act.";
pub fn unknown_command(cmd: &str) -> String {
    format!(
        "Unknown command '{cmd}'. Try :runbook NAME, :db NAME, :export md, :note TEXT, :q (? lists all)."
    )
}
pub fn unknown_db(name: &str, known: &str) -> String {
    format!("No database '{name}'. Known: {known}.")
}
pub fn unknown_runbook(name: &str, known: &str) -> String {
    format!("No runbook '{name}'. Known: {known}.")
}
pub fn bad_export(fmt: &str) -> String {
    format!("Cannot export as '{fmt}': use :export md, :export json or :export html.")
}
pub const NOTE_EMPTY: &str = "A note needs text: :note what you saw or decided.";
pub const PATH_USAGE: &str = "Usage: :path dump (restore a backup), :path pitr (recover from the WAL archive) or :path auto (choose-path decides).";
pub fn path_sent(path: &str) -> String {
    match path {
        "auto" => "Path: choose-path decides (pitr when an archive covers the damage).".to_string(),
        p => {
            format!("Path for the next incident runbook: {p} (choose-path journals it as forced).")
        }
    }
}
pub fn pitr_target_sent(target: &str) -> String {
    if target.is_empty() || target == "none" {
        "Recovery target: back to the one found in the WAL.".to_string()
    } else {
        format!(
            "Recovery target for the next pitr path: {target} (recover-pitr asks you to type a phrase naming it)."
        )
    }
}
pub fn note_sent(text: &str) -> String {
    format!("Note sent to the journal: {text}")
}
pub fn export_sent(fmt: &str) -> String {
    format!("Export as {fmt} requested.")
}
pub fn runbook_sent(name: &str) -> String {
    format!("Starting runbook '{name}'.")
}
pub fn engine_busy(what: &str) -> String {
    format!("The engine is busy and did not take '{what}'; try again in a moment.")
}
pub fn engine_gone(what: &str) -> String {
    format!("The engine is gone; '{what}' was not sent. The journal has everything up to now.")
}
pub const DB_REQUIRED: &str = "Which database? :db NAME";
pub fn db_selected(name: &str) -> String {
    format!("Now viewing database '{name}'.")
}
pub fn more_below(n: usize) -> String {
    format!("{n} more")
}
pub fn too_small(w: u16, h: u16, min_w: u16, min_h: u16) -> String {
    format!("Terminal is {w}x{h}; lifeline needs at least {min_w}x{min_h}. Enlarge the window.")
}

// Footer labels (short) and help texts (long), per action.
pub fn action_label(a: Action) -> &'static str {
    match a {
        Action::Help => "help",
        Action::Command => "command",
        Action::Filter => "filter",
        Action::Quit => "quit",
        Action::ForceQuit => "quit now",
        Action::NextView => "next view",
        Action::PrevView => "prev view",
        Action::ViewOverview => "overview",
        Action::ViewServices => "services",
        Action::ViewTimeline => "timeline",
        Action::ViewRunbook => "runbook",
        Action::ViewJournal => "journal",
        Action::Down => "down",
        Action::Up => "up",
        Action::PageDown => "page down",
        Action::PageUp => "page up",
        Action::Top => "top",
        Action::Bottom => "bottom",
        Action::Open => "open",
        Action::Back => "back",
        Action::NextDb => "next db",
        Action::Note => "note",
        Action::Ack => "acknowledge",
        Action::ZoomIn => "zoom in",
        Action::ZoomOut => "zoom out",
        Action::PanLeft => "earlier",
        Action::PanRight => "later",
        Action::Abort => "abort",
        Action::Retry => "retry step",
        Action::Pause => "pause",
        Action::Sort => "sort",
        Action::Migrations => "migrations",
    }
}

pub fn action_help(a: Action) -> &'static str {
    match a {
        Action::Help => "show this help",
        Action::Command => "command line (:runbook NAME, :db NAME, :export md, :note TEXT, :q)",
        Action::Filter => "filter the rows of this view; esc clears",
        Action::Quit => "quit (asks first while a step is running)",
        Action::ForceQuit => "quit; twice while a step is running",
        Action::NextView => "next view",
        Action::PrevView => "previous view",
        Action::ViewOverview => "Overview: hosts, databases, hazards first",
        Action::ViewServices => "Services: every job per host that reaches a database",
        Action::ViewTimeline => "Timeline: row counts over time",
        Action::ViewRunbook => "Runbook: steps, preview, progress, confirmations",
        Action::ViewJournal => "Journal: every event, newest last",
        Action::Down => "move down",
        Action::Up => "move up",
        Action::PageDown => "page down",
        Action::PageUp => "page up",
        Action::Top => "go to the first row",
        Action::Bottom => "go to the last row (the journal follows new lines)",
        Action::Open => {
            "open: details, answer a confirmation, a runbook's plan (s starts it), the backup panel of a finished pick"
        }
        Action::Back => "back out: close a popup, clear the filter",
        Action::NextDb => "show the next database",
        Action::Note => "add a note to the journal",
        Action::Ack => "acknowledge every alert shown (journaled with your name)",
        Action::ZoomIn => "zoom in (less time on screen)",
        Action::ZoomOut => "zoom out (more time on screen)",
        Action::PanLeft => "pan to earlier times",
        Action::PanRight => "pan to later times (back to following now)",
        Action::Abort => "abort the running runbook (asks first)",
        Action::Retry => {
            "retry the failed step under the cursor (Runbook view; journaled; only the step the run stopped at)"
        }
        Action::Pause => {
            "pause the screen's numbers to read them (p again resumes; confirmations and the journal still arrive)"
        }
        Action::Sort => {
            "sort the list by the next key (Services: jobs; Timeline: tables; Overview: databases; the backup panel: candidates); the key is shown in the title"
        }
        Action::Migrations => {
            "migration history of the selected database (on a database row of the Overview: that one); runs applied at once flagged"
        }
    }
}

// Sortable lists (issue 19): the keys `s` cycles through, default first.
pub const SORT_SERVICES: [&str; 4] = ["hazards first", "name", "state", "databases"];
pub const SORT_TABLES: [&str; 3] = ["alerts first", "name", "rows (most first)"];
pub const SORT_DATABASES: [&str; 3] = ["inventory order", "name", "rows (most first)"];
pub const SORT_BACKUPS: [&str; 4] = [
    "at stake first",
    "newest first",
    "name",
    "size (largest first)",
];
/// The sort keys of a view's list (empty: its order is fixed).
pub fn sort_keys(v: View) -> &'static [&'static str] {
    match v {
        View::Overview => &SORT_DATABASES,
        View::Services => &SORT_SERVICES,
        View::Timeline => &SORT_TABLES,
        View::Runbook | View::Journal => &[],
    }
}
pub fn sorted_by(key: &str) -> String {
    format!("sorted by {key} (s)")
}
pub fn sort_set(list: &str, key: &str) -> String {
    format!("{list} sorted by {key}")
}
pub const SERVICES_LIST: &str = "Jobs";
pub const BACKUPS_LIST: &str = "Candidates";
pub const SORT_FIXED: &str =
    "this view keeps its order (steps in run order, the journal in time order)";

pub const HELP_TITLE: &str = "Help";

// Migration history popup.
pub fn migrations_title(db: &str) -> String {
    format!("Migrations of '{db}'")
}
pub const NO_MIGRATION_TABLE: &str = "No migration table (Prisma, Flyway, Alembic, Rails, Django, diesel, sqlx) found in this database.";
pub const MIGRATIONS_NOT_READ: &str =
    "The migration tables have not been read yet (read every 10 s while the database answers).";
pub const NO_DB_SELECTED: &str = "No database selected: :db NAME first.";
pub fn migrations_head(tool: &str, table: &str, total: i64, shown: usize) -> String {
    if (shown as i64) < total {
        format!("{tool}: '{table}', {total} migration(s) applied, the newest {shown} shown")
    } else {
        format!("{tool}: '{table}', {total} migration(s) applied")
    }
}
pub fn migration_run(reapplied: bool, why: &str) -> String {
    if reapplied {
        format!("RE-APPLIED: {why}")
    } else {
        format!("APPLIED AT ONCE: {why}")
    }
}
pub const IN_RUN: &str = "in the run";
pub const NO_TIME: &str = "(no time kept)";
pub const HELP_SECTION_ALL: &str = "Everywhere";
pub const HELP_SECTION_TIMELINE: &str = "Timeline";
pub const HELP_SECTION_RUNBOOK: &str = "Runbook";
pub const HELP_SECTION_COMMANDS: &str = "Command line (:)";
pub const HELP_SECTION_SYMBOLS: &str = "Symbols";
pub const HELP_COMMANDS: [(&str, &str); 14] = [
    (
        ":runbook NAME",
        "start a runbook (:runbook alone shows the Runbook view)",
    ),
    (
        ":plan NAME",
        "show a runbook's plan, every step resolved, nothing run (s starts it)",
    ),
    (
        ":backups",
        "the backup candidates of the last pick, with times, labels, losses, reasons",
    ),
    (":db NAME", "view and act on this database"),
    (
        ":migrations [NAME]",
        "the migration history of the selected (or named) database, runs applied at once flagged",
    ),
    (":export md|json|html", "export the post-incident timeline"),
    (":note TEXT", "add a note to the journal"),
    (
        ":pitr-target lsn:X/Y|time:T|none",
        "move the pitr path's recovery target (a typed phrase names it)",
    ),
    (
        ":path dump|pitr|auto",
        "force the next incident runbook's path (auto: choose-path decides)",
    ),
    (":abort", "abort the running runbook"),
    (
        ":frozen continue|end",
        "continue (CONT) or end pids a run left frozen",
    ),
    (":overview :services :timeline :journal", "switch view"),
    (":help", "this help"),
    (":q  :q!", "quit (:q! without asking)"),
];
pub const HELP_SYMBOLS: [(&str, &str); 10] = [
    ("ok", "done, healthy, reachable"),
    ("bad", "failed, down, missing"),
    ("warn", "hazard or alert"),
    ("running", "running"),
    ("pending", "pending"),
    ("skipped", "skipped"),
    ("interrupted", "interrupted"),
    ("stopped", "stopped by the runbook"),
    ("event", "journal event on the time axis"),
    ("incident", "incident time on the time axis"),
];

// Key map file errors.
pub fn keymap_unknown_action(name: &str, known: &[&str]) -> String {
    format!(
        "'{name}' is not an action; use one of: {}",
        known.join(", ")
    )
}
pub const KEYMAP_NOT_KEYS: &str = "expected a key (\"j\") or a list of keys ([\"j\", \"down\"])";
pub fn keymap_bad_key(k: &str) -> String {
    format!(
        "cannot read key '{k}'; write keys like 'j', 'G', '?', 'ctrl-d', 'alt-x', 'enter', 'esc', 'tab', 'pgdn', 'f5'"
    )
}
pub fn keymap_conflict(k: &str, a: &str, b: &str) -> String {
    format!("key '{k}' is bound to both '{a}' and '{b}'; give one of them another key")
}

// ---------- stop plan checklist and frozen pids (issue 13) ----------

pub const STOP_PLAN_TITLE: &str = "Stop plan";
pub const STOP_PLAN_HINT: &str = "space tick/untick  Enter confirm  Esc put aside  X stop nothing";
pub const STOP_PLAN_ASIDE: &str =
    "Stop plan put aside: nothing is frozen until you confirm it (4, Enter reopens it).";
pub const STOP_PLAN_CANCELLED: &str =
    "Stop plan cancelled: nothing will be frozen or stopped; the step fails.";
pub const STOP_PLAN_EDITED: &str = "edited";
pub const WAITING_STOP_PLAN: &str =
    "STOP PLAN WAITING: nothing is frozen until you confirm it (Enter reviews it)";
pub const NOTHING_FROZEN: &str = "No pids of this incident are left frozen.";

pub fn stop_plan_sent(n: usize) -> String {
    format!("Stop plan confirmed: {n} item(s) to stop.")
}

pub fn stop_plan_heading(step: &str, db: Option<&str>, stop: usize, total: usize) -> String {
    match db {
        Some(db) => format!("step '{step}': stop the writers of '{db}': {stop} of {total} ticked"),
        None => format!("step '{step}': {stop} of {total} ticked"),
    }
}

pub fn stop_plan_confirm(n: usize, edits: usize) -> String {
    format!("Stop {n} item(s) ({edits} change(s) to the plan)? y/Enter: yes, any other key: back")
}

pub fn frozen_usage(how: &str) -> String {
    format!(
        "':frozen {how}': say ':frozen continue' (send CONT) or ':frozen end' (TERM, then KILL)"
    )
}

pub fn frozen_sent(end: bool) -> String {
    if end {
        "Ending the frozen pids (TERM, then KILL); the journal records it.".into()
    } else {
        "Continuing the frozen pids (CONT); the journal records it.".into()
    }
}

pub fn frozen_banner(lines: &[String]) -> String {
    format!(
        "{}  (':frozen continue' or ':frozen end')",
        lines.join("; ").to_uppercase()
    )
}

pub fn set_aside(why: &str) -> String {
    format!("set aside: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration(12), "12 s");
        assert_eq!(duration(65), "1 min 05 s");
        assert_eq!(duration(754), "12 min");
        assert_eq!(duration(7500), "2 h 05 min");
        assert_eq!(duration(90_000), "1 d 1 h");
        assert_eq!(ago(12), "12 s ago");
        assert_eq!(clock(3 * 3600 + 62), "03:01:02");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1000), "-1,000");
        assert_eq!(count(999), "999");
        assert_eq!(compact(22), "22");
        assert_eq!(compact(1_234_567), "1.2M");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(rows(1), "1 row");
        assert_eq!(alerts(2), "2 alerts");
    }
}
