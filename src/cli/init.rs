//! `lifeline init`: writes a starter inventory (0600) from what this machine
//! knows, and says what is left to fill in. Never writes a password.

use std::process::ExitCode;

/// `lifeline init`: the starter inventory, and what is left to fill in.
pub fn cmd_init(args: &lifeline::init::InitArgs) -> ExitCode {
    let starter = match lifeline::init::run(args) {
        Ok(s) => s,
        Err(e) => {
            lifeline::errln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let out = args.output.display();
    lifeline::outln!(
        "wrote '{out}' (0600): {} host(s), {} database(s), {} backup catalog(s); no password in it",
        starter.hosts,
        starter.databases,
        starter.catalogs
    );
    for t in &starter.todo {
        lifeline::outln!("fill in: {t}");
    }
    lifeline::outln!(
        "next: check it with 'lifeline check -i {out}', then 'lifeline status -i {out}'"
    );
    ExitCode::SUCCESS
}
