//! Exit codes and the typed failures that choose them.
//!
//! Library code returns typed errors; commands wrap them with context
//! (anyhow). `main` walks the whole chain and takes the first typed failure it
//! finds, so context never hides what kind of failure it was.

use salescast_core::accounts::AccountsError;
use salescast_core::config::ConfigError;
use salescast_core::lake::LakeError;
use salescast_core::pipeline::doctor::Unhealthy;
use salescast_core::pipeline::predict::PredictError;
use salescast_core::pipeline::rollback::RollbackError;
use salescast_core::predictions::PredictionsError;
use salescast_core::predictions_shards::ShardsError;
use salescast_core::registry::RegistryError;
use salescast_core::retrain_runs::RunError;
use salescast_core::scores::ScoresError;
use salescast_core::scores_shards::ScoresShardsError;
use salescast_core::train::TrainError;
use salescast_core::validate::DataError;

/// The process exit codes, as documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    /// Anything not classified below: a bug, an I/O failure, a backend outage.
    Unexpected = 1,
    /// Bad command line or configuration.
    Usage = 2,
    /// Input data missing or malformed; stored data damaged (`doctor`).
    DataInvalid = 3,
    /// Another run changed what this run was about to change.
    Superseded = 4,
    /// Nothing to forecast with: the registry has no champion yet.
    NoChampion = 5,
    /// A fan-in (predict's or monitor's) found a shard's output missing,
    /// unfinished, damaged, stale or from another champion or N: run those
    /// shards again.
    ShardsIncomplete = 6,
}

/// Chooses the exit code for a failed run from the first typed error in its chain.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if cause.is::<ConfigError>() {
            return ExitCode::Usage;
        }
        if cause.is::<DataError>()
            || matches!(cause.downcast_ref::<LakeError>(), Some(LakeError::Data(_)))
            || matches!(cause.downcast_ref::<TrainError>(), Some(TrainError::Data(_)))
        {
            return ExitCode::DataInvalid;
        }
        match cause.downcast_ref::<AccountsError>() {
            Some(
                AccountsError::Invalid { .. }
                | AccountsError::UnknownUser { .. }
                | AccountsError::Exists { .. }
                | AccountsError::UnknownToken { .. }
                | AccountsError::TokenRevoked { .. },
            ) => {
                return ExitCode::Usage;
            }
            Some(AccountsError::Concurrent { .. }) => return ExitCode::Superseded,
            Some(AccountsError::Unreadable { .. }) => return ExitCode::DataInvalid,
            _ => {}
        }
        if cause.is::<Unhealthy>() {
            return ExitCode::DataInvalid;
        }
        if cause.is::<PredictError>() {
            return ExitCode::NoChampion;
        }
        match cause.downcast_ref::<RollbackError>() {
            Some(RollbackError::NoChampion { .. }) => return ExitCode::NoChampion,
            Some(_) => return ExitCode::Usage,
            None => {}
        }
        if let Some(RunError::Incomplete { .. }) = cause.downcast_ref::<RunError>() {
            return ExitCode::ShardsIncomplete;
        }
        // A transparent wrapper: its inner error is not a link of the chain.
        match cause.downcast_ref::<ShardsError>() {
            Some(ShardsError::Incomplete { .. }) => return ExitCode::ShardsIncomplete,
            Some(ShardsError::Predictions(PredictionsError::Corrupt { .. })) => return ExitCode::DataInvalid,
            Some(ShardsError::Predictions(PredictionsError::Concurrent { .. })) => {
                return ExitCode::Superseded;
            }
            _ => {}
        }
        match cause.downcast_ref::<ScoresShardsError>() {
            Some(ScoresShardsError::Incomplete { .. }) => return ExitCode::ShardsIncomplete,
            Some(ScoresShardsError::Scores(
                ScoresError::Lake(LakeError::Data(_))
                | ScoresError::Unreadable { .. }
                | ScoresError::Predictions(PredictionsError::Corrupt { .. }),
            )) => return ExitCode::DataInvalid,
            _ => {}
        }
        match cause.downcast_ref::<PredictionsError>() {
            Some(PredictionsError::Corrupt { .. }) => return ExitCode::DataInvalid,
            Some(PredictionsError::Concurrent { .. }) => return ExitCode::Superseded,
            _ => {}
        }
        // Transparent wrappers: their inner error is not a link of the chain.
        match cause.downcast_ref::<ScoresError>() {
            Some(
                ScoresError::Lake(LakeError::Data(_))
                | ScoresError::Unreadable { .. }
                | ScoresError::Predictions(PredictionsError::Corrupt { .. }),
            ) => return ExitCode::DataInvalid,
            Some(ScoresError::Predictions(PredictionsError::Concurrent { .. })) => {
                return ExitCode::Superseded;
            }
            _ => {}
        }
        if let Some(err) = cause.downcast_ref::<RegistryError>() {
            match err {
                RegistryError::Superseded { .. } => return ExitCode::Superseded,
                // Stored data damaged: an artifact that does not hash to
                // its name or is missing, a manifest, decision or pointer
                // that does not parse.
                RegistryError::Corrupt { .. }
                | RegistryError::Missing { .. }
                | RegistryError::Unreadable { .. }
                | RegistryError::PointerUnreadable { .. } => return ExitCode::DataInvalid,
                RegistryError::UnknownVersion { .. } | RegistryError::AmbiguousVersion { .. } => {
                    return ExitCode::Usage;
                }
                RegistryError::Store(_)
                | RegistryError::NotFinite { .. }
                | RegistryError::Inconsistent { .. }
                | RegistryError::Pause(_) => {}
            }
        }
    }
    ExitCode::Unexpected
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn context_does_not_hide_the_kind() {
        let err = Err::<(), _>(DataError::file("x.csv", "empty"))
            .context("reading the window")
            .unwrap_err();
        assert_eq!(code_for(&err), ExitCode::DataInvalid);
        let err = anyhow::Error::new(RegistryError::Superseded {
            uri: "s3://b/sales/decisions/00000002.json".into(),
            detail: "champion moved".into(),
        })
        .context("promoting");
        assert_eq!(code_for(&err), ExitCode::Superseded);
        let err =
            anyhow::Error::new(TrainError::from(DataError::file("window", "no rows"))).context("splitting");
        assert_eq!(
            code_for(&err),
            ExitCode::DataInvalid,
            "a transparent wrapper keeps the kind"
        );
        assert_eq!(code_for(&anyhow::anyhow!("boom")), ExitCode::Unexpected);
    }
}
