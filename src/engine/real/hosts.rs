//! Host actions: probe (services, hazards, database identity), stop-services
//! with the hold, start-services, and shell commands, over `transport::Host`
//! (local or SSH). Never removes a file: cron lines are commented out with
//! the original kept beside it.

use super::RealActions;
use crate::engine::actions::{ActionError, Output};
use crate::engine::types::*;

pub async fn probe(
    a: &RealActions,
    req: &ProbeRequest,
    out: &Output,
) -> Result<ProbeOutcome, ActionError> {
    let _ = (a, req, out);
    Err(ActionError::NotWired {
        action: "probe",
        needs: "src/engine/real/hosts.rs",
    })
}

pub async fn stop_services(
    a: &RealActions,
    req: &StopRequest,
    out: &Output,
) -> Result<StopOutcome, ActionError> {
    let _ = (a, req, out);
    Err(ActionError::NotWired {
        action: "stop-services",
        needs: "src/engine/real/hosts.rs",
    })
}

pub async fn start_services(
    a: &RealActions,
    req: &StartRequest,
    out: &Output,
) -> Result<StartOutcome, ActionError> {
    let _ = (a, req, out);
    Err(ActionError::NotWired {
        action: "start-services",
        needs: "src/engine/real/hosts.rs",
    })
}

/// A shell command on a host: local hosts through `DirectActions`, others
/// over the host's transport.
pub async fn command(
    a: &RealActions,
    req: &CommandRequest,
    out: &Output,
) -> Result<CommandOutcome, ActionError> {
    use crate::engine::actions::Actions;
    if req.host.is_local() {
        return a.direct.command(req, out).await;
    }
    Err(ActionError::NotWired {
        action: "command",
        needs: "src/engine/real/hosts.rs",
    })
}
