//! Plans (covariates of future days): not read yet. Until `ingest --plan`
//! lands, `read_plans` finds no plan and every forecast row uses the default
//! covariates (marked `planned = false`).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::lake::{Lake, LakeError};
use crate::mapping::DataMapping;
use crate::validate::ValidationSettings;

/// The plans of a range of days.
pub struct PlanWindow {
    pub frame: DataFrame,
    pub days: BTreeSet<NaiveDate>,
}

/// No plans yet: an empty window.
pub fn read_plans(
    _lake: &Lake,
    _mapping: &DataMapping,
    _validation: &ValidationSettings,
    _first_day: NaiveDate,
    _last_day: NaiveDate,
) -> Result<PlanWindow, LakeError> {
    Ok(PlanWindow {
        frame: DataFrame::empty(),
        days: BTreeSet::new(),
    })
}
