//! `lifeline status [--json]`: one probe of every host, database and backup
//! catalog of the inventory, printed. Reads only; changes nothing.

use std::process::ExitCode;

use anyhow::Context;
use lifeline::inventory::NO_INVENTORY;
use lifeline::redact::Redactor;

use super::{Cli, EXIT_USAGE, inventory_path, state_dir};

pub fn cmd_status(
    cli: &Cli,
    json: bool,
    timeout: u64,
    redactor: &Redactor,
) -> anyhow::Result<ExitCode> {
    let Some(path) = inventory_path(cli) else {
        lifeline::errln!("{NO_INVENTORY}");
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let inv = match lifeline::inventory::open(&path, redactor) {
        Ok((inv, warnings)) => {
            for w in warnings {
                tracing::debug!("{w}");
            }
            inv
        }
        Err(e) => {
            for l in e.report(&path, None) {
                lifeline::errln!("{l}");
            }
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let opts = lifeline::status::StatusOptions {
        host_timeout: std::time::Duration::from_secs(timeout.max(1)),
        ..Default::default()
    };
    let rt = lifeline::runtime::build().context("cannot start the async runtime")?;
    let report = rt.block_on(async {
        let hosts = lifeline::transport::Hosts::from_inventory(&inv, None);
        lifeline::status::collect(&inv, &hosts, &opts, redactor).await
    });
    if json {
        println!(
            "{}",
            lifeline::term::json_safe(&lifeline::status::render_json(&report, redactor))
        );
    } else {
        lifeline::out!("{}", lifeline::status::render_text(&report, redactor));
        // Processes a run left frozen (its connection lost): `run --resume` continues them.
        for l in lifeline::actions::hosts::frozen::frozen_in_state_dir(&state_dir(cli)) {
            lifeline::outln!(
                "{l} (resume the run with --resume, or 'kill -s CONT' them on the host)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
