//! Test-only pause points: named steps of the promotion protocol (and of
//! writing predictions and lake days) where a
//! process can be made to stop, so a test can kill it (SIGKILL) exactly there.
//!
//! Set `SCAST_TEST_PAUSE_AT=<step>` and `SCAST_TEST_GATE=<dir>` (deliberately
//! not `SALESCAST_*`: those are checked against the known settings). At that
//! step the process writes `<dir>/ready-<step>-<pid>` and waits (up to two
//! minutes) until `<dir>/go` exists. Unset, every pause point is a no-op.
//! Nothing in normal use sets these variables.

use std::path::Path;
use std::time::{Duration, Instant};

/// The step to pause at (test-only).
pub const ENV_STEP: &str = "SCAST_TEST_PAUSE_AT";
/// The folder where the paused process announces itself (test-only).
pub const ENV_GATE: &str = "SCAST_TEST_GATE";

/// How long a paused process waits for `go` before giving up.
const WAIT: Duration = Duration::from_secs(120);

/// The named steps of a run that commits a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Retrain: the challenger is stored, nothing is decided in the log yet.
    VersionStored,
    /// The commit is about to append its decision.
    BeforeDecision,
    /// The decision is logged; the pointer has not moved yet.
    DecisionLogged,
    /// The pointer moved; the run has not written its report yet.
    PointerMoved,
    /// Predict: the data files are written, the manifest is not.
    PredictionsStaged,
    /// Ingest: the new day files are written, the replaced ones not removed.
    DaysWritten,
    /// Sharded predict: the shard's part file is written, its marker is not.
    ShardStaged,
    /// A step of a sharded retrain: its files are staged, its marker is not.
    RunStaged,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::VersionStored => "version-stored",
            Step::BeforeDecision => "before-decision",
            Step::DecisionLogged => "decision-logged",
            Step::PointerMoved => "pointer-moved",
            Step::PredictionsStaged => "predictions-staged",
            Step::DaysWritten => "days-written",
            Step::RunStaged => "run-staged",
            Step::ShardStaged => "shard-staged",
        }
    }
}

/// Pauses at `step` if the test variables ask for it.
pub fn at(step: Step) -> std::io::Result<()> {
    let wanted = std::env::var(ENV_STEP).ok();
    let gate = std::env::var_os(ENV_GATE);
    match (wanted, gate) {
        (Some(wanted), Some(gate)) if wanted == step.name() => {
            tracing::warn!("test hook: pausing at {}", step.name());
            wait_at_gate(Path::new(&gate), &format!("ready-{}", step.name()))
        }
        _ => Ok(()),
    }
}

/// Announces `<gate>/<label>-<pid>`, then waits until `<gate>/go` exists.
fn wait_at_gate(gate: &Path, label: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(gate)?;
    std::fs::write(gate.join(format!("{label}-{}", std::process::id())), b"")?;
    let deadline = Instant::now() + WAIT;
    while !gate.join("go").exists() {
        if Instant::now() >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("timed out waiting at {}", gate.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
