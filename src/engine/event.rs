//! What a build reports while it runs ([`BuildEvent`], for the CLI's output and the server's log streams)
//! and how it, or one of its phases, ended ([`Outcome`]).

use crate::record::{FailureType, Status};

/// How a build (or one of its phases) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The build failed for a reason of its own (a step, a push, a spec); `detail` says which.
    Failure {
        kind: FailureType,
        detail: String,
    },
    Timeout,
    Cancelled,
    /// Docker or the host failed us, not the build.
    InternalError {
        detail: String,
    },
}

/// Progress of a build, for whoever watches (the CLI prints it; the server will stream it).
#[derive(Clone, Debug, PartialEq)]
pub enum BuildEvent {
    /// The checkout is ready and the plan made: the build is WORKING.
    Started {
        build_id: String,
        steps: Vec<String>,
    },
    /// A config warning (a field with no effect here).
    Warning(String),
    /// A phase after the steps began (`components`, `images`, `specs`, `compile`, `upload`).
    Phase {
        name: &'static str,
    },
    /// A line about a phase's work, e.g. a component's build output (`source` names the component).
    Output {
        source: String,
        line: String,
    },
    /// A phase ended; `detail` summarises it (`2 built, 1 reused`).
    PhaseDone {
        name: &'static str,
        ok: bool,
        detail: String,
    },
    StepStarted {
        index: usize,
    },
    StepOutput {
        index: usize,
        line: String,
    },
    StepFinished {
        index: usize,
        status: Status,
        exit_code: Option<i64>,
        seconds: Option<f64>,
    },
    Finished {
        status: Status,
    },
}
