//! Data actions: pick-backup (the catalog against the incident time),
//! restore (the streaming executor into `<db>__restore_<stamp>`, reading
//! the backup over the catalog host's transport), verify (integrity checks
//! and row counts against the manifest). Never writes to the live database.

use super::RealActions;
use crate::engine::actions::{ActionError, Output};
use crate::engine::types::*;

pub async fn pick_backup(
    a: &RealActions,
    req: &PickRequest,
    out: &Output,
) -> Result<PickOutcome, ActionError> {
    let _ = (a, req, out);
    Err(ActionError::NotWired {
        action: "pick-backup",
        needs: "src/engine/real/data.rs",
    })
}

pub async fn restore(
    a: &RealActions,
    req: &RestoreRequest,
    out: &Output,
) -> Result<RestoreOutcome, ActionError> {
    let _ = (a, req, out);
    Err(ActionError::NotWired {
        action: "restore",
        needs: "src/engine/real/data.rs",
    })
}

pub async fn verify(
    a: &RealActions,
    req: &VerifyRequest,
    out: &Output,
) -> Result<VerifyOutcome, ActionError> {
    let _ = (a, req, out);
    Err(ActionError::NotWired {
        action: "verify",
        needs: "src/engine/real/data.rs",
    })
}
