//! `lifeline runbooks`: the runbooks and when to use each. Reads only.

use std::process::ExitCode;

pub fn cmd_runbooks() -> ExitCode {
    ExitCode::from(lifeline::headless::cmd_runbooks())
}
