//! The runbook engine: one pure state machine (`machine`) driven by one
//! loop (`driver`) that journals before it acts, used by the TUI and by
//! `lifeline run`. It never performs an action without a journal line first.
//!
//! To wire an action, implement `Actions` (each method gets a fully
//! resolved request and returns a typed outcome); ``actions::DirectActions` does
//! note, sql, swap, snapshot, command and identity itself.

pub mod actions;
pub mod answers;
pub mod driver;
pub mod events;
#[cfg(test)]
mod layering;
pub mod machine;
pub mod params;
pub mod preview;
pub mod session;
pub mod types;

pub use actions::{ActionError, Actions, ErrorClass, Output};
pub use answers::{Answers, AnswersOperator};
pub use driver::{Answer, ChannelOperator, Engine, NoJournal, Operator, Recorder, Reply};
pub use events::{EngineEvent, EngineView, ProgressUnit, Question, RunExit, StepStatus, StepView};
pub use machine::{
    Decision, Effect, Input, OVERRIDE_PHRASE, ParamValue, Params, ResolvedStep, RunContext, State,
    StepFailure, apply,
};
pub use session::{LiveRun, RunSpec, StartError, open_dry_run, open_live};
