//! Forecast intervals by split conformal prediction on log ratios: a
//! model's out-of-sample forecasts (the inner validation window, rolling
//! origins) give, per horizon, the distribution of |ln(actual / forecast)|;
//! its p quantile q makes the interval [f e^-q, f e^q] of a new forecast f.
//! Ratios rather than differences because a store's errors grow with its
//! sales: one band then fits small and large series alike. Symmetric (in
//! log space) rather than equal-tailed because the bias of a window drifts:
//! on rossmann the picked model over-forecast the inner validation window
//! (bias +0.013 one day ahead) and under-forecast the holdout (-0.020 over
//! 1-14), and equal-tailed bands copy the first window's skew: they covered
//! 76.9% of the holdout, symmetric ones 80.6% (BENCHMARKS.md, "Forecast
//! horizons").

use serde::{Deserialize, Serialize};

use super::origins::Scored;

/// Fewer calibration forecasts than this at a horizon: that horizon borrows
/// the band of all horizons pooled.
const MIN_ROWS: usize = 100;

/// The interval of one horizon, as multipliers of the forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub horizon: u32,
    pub lower: f64,
    pub upper: f64,
    /// The calibration forecasts behind it (0: borrowed from the pool).
    pub rows: usize,
}

/// Per-horizon bands for a central interval of probability `interval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub interval: f64,
    pub bands: Vec<Band>,
}

impl Calibration {
    /// Calibrates on scored out-of-sample forecasts (forecasts of 0 carry no
    /// ratio and are skipped). None when there are too few forecasts.
    pub fn fit(scored: &[Scored], horizon: u32, interval: f64) -> Option<Self> {
        // |ln(actual / forecast)|: infinite for an actual of 0 (always outside).
        let ratio = |s: &Scored| {
            (s.forecast > 0.0 && s.actual.is_finite() && s.actual >= 0.0)
                .then(|| (s.actual / s.forecast).ln().abs())
        };
        let mut pooled: Vec<f64> = scored.iter().filter_map(ratio).collect();
        if pooled.len() < MIN_ROWS {
            return None;
        }
        let (pool_lower, pool_upper) = band(&mut pooled, interval);
        let bands = (1..=horizon)
            .map(|h| {
                let mut ratios: Vec<f64> = scored
                    .iter()
                    .filter(|s| s.horizon == h)
                    .filter_map(ratio)
                    .collect();
                if ratios.len() < MIN_ROWS {
                    return Band {
                        horizon: h,
                        lower: pool_lower,
                        upper: pool_upper,
                        rows: 0,
                    };
                }
                let (lower, upper) = band(&mut ratios, interval);
                Band {
                    horizon: h,
                    lower,
                    upper,
                    rows: ratios.len(),
                }
            })
            .collect();
        Some(Self { interval, bands })
    }

    /// The interval of a forecast `horizon` days ahead ([0, 0] for a
    /// forecast of 0; horizons past the calibrated ones use the last band).
    pub fn bounds(&self, horizon: u32, forecast: f64) -> (f64, f64) {
        let Some(band) = self
            .bands
            .get((horizon as usize).saturating_sub(1))
            .or(self.bands.last())
        else {
            return (forecast, forecast);
        };
        let f = forecast.max(0.0);
        (f * band.lower, f * band.upper)
    }

    /// The share of `scored` actuals inside their intervals.
    pub fn coverage<'a>(&self, scored: impl IntoIterator<Item = &'a Scored>) -> f64 {
        let (mut inside, mut all) = (0usize, 0usize);
        for s in scored {
            let (lower, upper) = self.bounds(s.horizon, s.forecast);
            all += 1;
            inside += usize::from(lower <= s.actual && s.actual <= upper);
        }
        if all == 0 {
            f64::NAN
        } else {
            inside as f64 / all as f64
        }
    }
}

/// The multipliers e^-q and e^q, q the conformal p quantile of the absolute
/// log ratios `values` (sorted in place): the order statistic at
/// ceil(p (n + 1)), clamped to n.
fn band(values: &mut [f64], p: f64) -> (f64, f64) {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    let rank = ((p * (n + 1) as f64).ceil() as usize).clamp(1, n);
    let q = values[rank - 1];
    ((-q).exp(), q.exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::origins::scored;

    #[test]
    fn bands_cover_the_calibration_share_and_scale_with_the_forecast() {
        // Actuals 100 e^x for x = -0.50, -0.49, ..., 0.49 (100 rows, forecast 100):
        // |x| sorted: 0, .01, .01, ..., the 81st of 101 ranks is 0.40.
        let rows: Vec<Scored> = (0..100)
            .map(|i| scored(1, 100.0, 100.0 * ((i as f64 - 50.0) / 100.0).exp()))
            .collect();
        let c = Calibration::fit(&rows, 2, 0.8).unwrap();
        let band = &c.bands[0];
        assert_eq!(band.rows, 100);
        assert!((band.upper.ln() - 0.40).abs() < 1e-9, "{band:?}");
        assert!((band.lower.ln() + 0.40).abs() < 1e-9, "{band:?}");
        let coverage = c.coverage(&rows);
        assert!((0.8..=0.82).contains(&coverage), "{coverage}");
        // Horizon 2 had no rows: it borrows the pool.
        assert_eq!(c.bands[1].rows, 0);
        assert_eq!((c.bands[1].lower, c.bands[1].upper), (band.lower, band.upper));
        let (lo, hi) = c.bounds(2, 1000.0);
        assert!((lo - 1000.0 * (-0.4f64).exp()).abs() < 1e-6 && (hi - 1000.0 * 0.4f64.exp()).abs() < 1e-6);
        assert_eq!(c.bounds(1, 0.0), (0.0, 0.0));
        assert!(Calibration::fit(&rows[..50], 1, 0.8).is_none(), "too few rows");
        // An actual of 0 on an open day is outside every band, never a NaN.
        let mut with_zero = rows.clone();
        with_zero.push(scored(1, 100.0, 0.0));
        let c = Calibration::fit(&with_zero, 1, 0.8).unwrap();
        assert!(c.bands[0].upper.is_finite());
    }
}
