//! Multi-day forecasting: the horizon and interval settings, and the pieces
//! that forecast days D+1 .. D+H from data up to day D with the one-day model
//! fed its own forecasts (`recursive`), score that on rolling forecast origins
//! (`origins`), and put calibrated intervals around it (`intervals`).
//!
//! Why recursive: measured against a direct model per horizon with LightGBM
//! on rossmann (BENCHMARKS.md, "Forecast horizons"), the recursive use of the
//! one-day model was as good at h=1 and better pooled over 1-7, 8-14 and
//! 1-14, and it keeps one model, one feature function and one artifact.

pub mod intervals;
pub mod origins;
pub mod recursive;

use serde::{Deserialize, Serialize};

use crate::setting::{Invalid, invalid};

/// How far ahead forecasts reach and how wide their intervals are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastSettings {
    /// Days forecast after the data day D: D+1 .. D+horizon_days.
    pub horizon_days: u32,
    /// The central probability of the forecast interval (0.8: the 10% and
    /// 90% quantiles).
    pub interval: f64,
}

impl Default for ForecastSettings {
    fn default() -> Self {
        Self {
            horizon_days: 14,
            interval: 0.8,
        }
    }
}

/// The longest horizon: a year of days.
pub const MAX_HORIZON_DAYS: u32 = 366;

impl ForecastSettings {
    pub fn check(&self) -> Result<(), Invalid> {
        if !(1..=MAX_HORIZON_DAYS).contains(&self.horizon_days) {
            return Err(invalid(
                "forecast.horizon_days",
                format!("must be between 1 and {MAX_HORIZON_DAYS}"),
            ));
        }
        if !(self.interval > 0.0 && self.interval < 1.0) {
            return Err(invalid(
                "forecast.interval",
                "must be a probability between 0 and 1 (0.8 for an 80% interval)",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),
    #[error(transparent)]
    Artifact(#[from] crate::models::ArtifactError),
    #[error("the feature frame has no {0} column")]
    Missing(String),
}
