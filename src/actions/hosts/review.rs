//! The operator's review of a stop plan (the console's checklist): stop-services
//! hands the plan it built to a `PlanReviewer` and waits for the edits (the
//! answers file's `[stop_plan]` type) or a cancel. Never freezes or stops
//! anything itself; a plan nobody answered is never carried out.

use tokio::sync::{mpsc, oneshot};

use crate::engine::types::StopPlanEdits;
use crate::inventory::ServiceKind;

/// Who edits the plan, as the plan's `why` and its errors name it.
pub const BY_CONSOLE: &str = "operator in the console";

/// One line of the plan under review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedItem {
    /// In the plan as built (attributed writers and their starters).
    pub stop: bool,
    pub name: String,
    pub host: String,
    pub kind: ServiceKind,
    /// Why it is stopped or left alone, with its evidence.
    pub why: String,
    /// How an edit names it (`pid:N`, `unit:NAME`, `NAME`); None: it can
    /// never be stopped (see `locked`).
    pub selector: Option<String>,
    /// Why the operator cannot add it (not part of this drill, the
    /// database server itself, nothing running).
    pub locked: Option<String>,
}

/// The plan of one stop-services step, before anything is frozen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopPlanProposal {
    pub step: String,
    pub database: Option<String>,
    pub items: Vec<ProposedItem>,
}

/// The operator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// Go on with these changes (empty: the plan as built).
    Go(StopPlanEdits),
    /// Do not stop anything; the step fails with this reason.
    Cancel(String),
}

/// A plan waiting for its answer.
pub type ReviewRequest = (StopPlanProposal, oneshot::Sender<Review>);

/// Where stop-services sends its plan for review (the console holds the
/// other end). Cheap to clone.
#[derive(Clone, Debug)]
pub struct PlanReviewer {
    tx: mpsc::Sender<ReviewRequest>,
}

impl PlanReviewer {
    pub fn new() -> (PlanReviewer, mpsc::Receiver<ReviewRequest>) {
        let (tx, rx) = mpsc::channel(4);
        (PlanReviewer { tx }, rx)
    }

    /// Waits for the operator. A reviewer that went away (console closed)
    /// is a cancel: nothing is stopped on a plan nobody saw through.
    pub async fn ask(&self, p: StopPlanProposal) -> Review {
        let (ack, answer) = oneshot::channel();
        if self.tx.send((p, ack)).await.is_err() {
            return Review::Cancel("nobody is there to review the stop plan".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Review::Cancel("the stop plan review was closed unanswered".into()))
    }
}
