//! The actions wired to the real modules: hosts (probe, stop-services,
//! start-services, command) through `transport` + `probe`, data (pick-backup,
//! restore, verify) through `catalog` + `restore` + `db`, and the rest through
//! `DirectActions`. Used by `lifeline run`, the console and the lab. Never
//! drops anything; every action is journaled by the engine before it runs.

pub mod data;
pub mod direct;
pub mod hosts;

use std::sync::Arc;

use crate::engine::actions::{ActionError, Actions, Output};
use crate::engine::types::*;
use crate::inventory::Inventory;
use crate::redact::Redactor;
use crate::transport::Hosts;
pub use direct::DirectActions;

/// Everything an action needs to reach the world, shared (cheap to clone).
#[derive(Clone)]
pub struct RealActions {
    pub(crate) direct: DirectActions,
    pub(crate) inventory: Arc<Inventory>,
    pub(crate) hosts: Arc<Hosts>,
    pub(crate) redactor: Redactor,
    /// How discovery runs on the hosts (cron root, PATH prefix, timeouts).
    pub(crate) probe: crate::probe::ProbeOptions,
    /// The answers file's changes to stop-services' plan.
    pub(crate) stop_plan: StopPlanEdits,
    /// Where stop-services sends its plan for the operator's review (the console).
    pub(crate) plan_review: Option<hosts::review::PlanReviewer>,
}

impl RealActions {
    /// Actions over the inventory's hosts (one transport per host, opened on
    /// first use) and databases. Secrets the inventory names must already be
    /// registered with `redactor` (`Inventory::register_secrets`).
    pub fn new(inventory: Inventory, redactor: Redactor) -> RealActions {
        let hosts = Hosts::from_inventory(&inventory, None);
        RealActions {
            direct: DirectActions {
                redactor: redactor.clone(),
                ..DirectActions::default()
            },
            inventory: Arc::new(inventory),
            hosts: Arc::new(hosts),
            redactor,
            probe: crate::probe::ProbeOptions::default(),
            stop_plan: StopPlanEdits::default(),
            plan_review: None,
        }
    }

    /// The same actions with the answers file's `[stop_plan]` applied to every stop.
    pub fn with_stop_plan(mut self, edits: StopPlanEdits) -> RealActions {
        self.stop_plan = edits;
        self
    }

    /// The same actions with every stop plan sent to `r` for the operator's
    /// review (edits or cancel) before anything is frozen.
    pub fn with_plan_review(mut self, r: hosts::review::PlanReviewer) -> RealActions {
        self.plan_review = Some(r);
        self
    }

    /// The same actions with other discovery options (tests point the cron
    /// root and a `systemctl` stand-in elsewhere).
    pub fn with_probe_options(mut self, opts: crate::probe::ProbeOptions) -> RealActions {
        self.probe = opts;
        self
    }

    /// The same actions over another set of transports (same names as the inventory's hosts).
    pub fn with_hosts(mut self, hosts: Hosts) -> RealActions {
        self.hosts = Arc::new(hosts);
        self
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

impl Actions for RealActions {
    async fn note(&self, text: &str, out: &Output) -> Result<StepOutcome, ActionError> {
        Ok(crate::engine::actions::note_outcome(text, out))
    }

    async fn identity(&self, db: &DbTarget) -> Result<DbIdentity, ActionError> {
        self.direct.identity(db).await
    }

    async fn probe(&self, req: &ProbeRequest, out: &Output) -> Result<ProbeOutcome, ActionError> {
        hosts::probe(self, req, out).await
    }

    async fn stop_services(
        &self,
        req: &StopRequest,
        out: &Output,
    ) -> Result<StopOutcome, ActionError> {
        hosts::stop_services(self, req, out).await
    }

    async fn snapshot(
        &self,
        req: &SnapshotRequest,
        out: &Output,
    ) -> Result<SnapshotOutcome, ActionError> {
        self.direct.snapshot(req, out).await
    }

    async fn pick_backup(
        &self,
        req: &PickRequest,
        out: &Output,
    ) -> Result<PickOutcome, ActionError> {
        data::pick_backup(self, req, out).await
    }

    async fn restore(
        &self,
        req: &RestoreRequest,
        out: &Output,
    ) -> Result<RestoreOutcome, ActionError> {
        data::restore(self, req, out).await
    }

    async fn reapply_owners(
        &self,
        req: &ReapplyRequest,
        out: &Output,
    ) -> Result<ReapplyOutcome, ActionError> {
        data::reapply_owners(self, req, out).await
    }

    async fn verify(
        &self,
        req: &VerifyRequest,
        out: &Output,
    ) -> Result<VerifyOutcome, ActionError> {
        data::verify(self, req, out).await
    }

    async fn swap(&self, req: &SwapRequest, out: &Output) -> Result<SwapOutcome, ActionError> {
        self.direct.swap(req, out).await
    }

    async fn merge_tables(
        &self,
        req: &MergeRequest,
        out: &Output,
    ) -> Result<MergeOutcome, ActionError> {
        data::merge_tables(req, out).await
    }

    async fn recover_pitr(
        &self,
        req: &PitrRequest,
        out: &Output,
    ) -> Result<PitrOutcome, ActionError> {
        data::recover_pitr(self, req, out).await
    }

    async fn choose_path(
        &self,
        req: &ChoosePathRequest,
        out: &Output,
    ) -> Result<PathOutcome, ActionError> {
        data::choose_path(self, req, out).await
    }

    async fn live_preview(&self, req: &ActionRequest) -> Result<Vec<String>, ActionError> {
        match req {
            ActionRequest::MergeTables(m) => {
                let t = data::merge_preview(m).await?;
                Ok(data::preview_lines(m, &t))
            }
            // A swap is confirmed with or without these numbers (a vanished
            // live database has nothing to discard): a failure only says so.
            ActionRequest::Swap(w) => {
                let absent = self
                    .direct
                    .identity(&w.database)
                    .await
                    .is_ok_and(|id| id.oid.is_none());
                if absent {
                    return Ok(vec![
                        "no live database: the swap discards nothing".to_string(),
                    ]);
                }
                Ok(
                    match data::swap_discards(&w.database, &w.restored, &self.redactor).await {
                        Ok(d) => data::discard_lines(&w.restored, &d),
                        Err(e) => vec![format!(
                            "could not count the rows the swap would discard: {e}"
                        )],
                    },
                )
            }
            _ => Ok(Vec::new()),
        }
    }

    async fn start_services(
        &self,
        req: &StartRequest,
        out: &Output,
    ) -> Result<StartOutcome, ActionError> {
        hosts::start_services(self, req, out).await
    }

    async fn command(
        &self,
        req: &CommandRequest,
        out: &Output,
    ) -> Result<CommandOutcome, ActionError> {
        hosts::command(self, req, out).await
    }

    async fn sql(&self, req: &SqlRequest, out: &Output) -> Result<SqlOutcome, ActionError> {
        self.direct.sql(req, out).await
    }
}
