//! The promotion gate's noise check: a paired bootstrap, over series, of the
//! challenger's relative WAPE improvement over the champion on the same
//! (origin, series, target day) rows, with a deterministic seed.
//!
//! What is resampled, and why series: the rows the gate scores are not
//! independent. One series' errors are correlated across origins (a store
//! whose level the model misjudges is misjudged from every origin), and the
//! rolling origins overlap (a target day is forecast from up to H origins
//! against the same actual), so resampling rows one by one treats some
//! thousands of dependent rows as independent and understates the noise
//! many times over. A block of all the rows of one series keeps that
//! dependence inside the block; series are close to independent of each
//! other once the day's shared shocks (holidays, promotions, weather) are
//! differenced out, and the comparison is paired: both models saw the same
//! day, so a shock common to all series moves both models' errors and
//! mostly cancels in the difference. Resampling days (or weeks of origins)
//! instead would keep the cross-series dependence but the holdout holds
//! only 28 days, 4 weeks: too few blocks for a stable interval, while a
//! chain has tens to thousands of series. The question the gate asks is
//! also a series question: would the challenger be better on this chain's
//! stores, not on these 28 days only. With fewer than [`MIN_BLOCKS`] series
//! there is no estimate (and the gate says so).
//!
//! The statistic is WAPE's own: (champion WAPE - challenger WAPE) /
//! champion WAPE = 1 - (sum of challenger |errors|) / (sum of champion
//! |errors|) over the resampled blocks (the paired rows share their
//! actuals, so the denominators cancel). The interval is the percentile
//! interval of that statistic over the resamples, two-sided at the
//! configured confidence: its lower bound > 0 is a one-sided test at level
//! (1 - confidence) / 2.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Fewer series than this give no interval.
pub const MIN_BLOCKS: usize = 5;

/// The estimate and its interval, as the decision log and the report record them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseEstimate {
    /// (champion WAPE - challenger WAPE) / champion WAPE on every paired row.
    pub improvement: f64,
    /// The interval's confidence (`promotion.confidence`).
    pub confidence: f64,
    pub lower: f64,
    pub upper: f64,
    /// Bootstrap resamples drawn (`promotion.resamples`).
    pub resamples: u32,
    /// What a resample draws with replacement: "series" (every row of one series).
    pub resampled: String,
    /// How many blocks (series) and paired rows there were.
    pub blocks: usize,
    pub rows: usize,
    /// The seed, derived from the run's inputs (never the clock).
    pub seed: u64,
}

impl NoiseEstimate {
    /// "90% interval -0.30% .. 1.90%".
    pub fn interval_text(&self) -> String {
        format!(
            "{:.0}% interval {:.2}% .. {:.2}%",
            100.0 * self.confidence,
            100.0 * self.lower,
            100.0 * self.upper
        )
    }

    /// The improvement is larger than its noise: the interval's lower bound is above 0.
    pub fn above_noise(&self) -> bool {
        self.lower > 0.0
    }
}

/// The paired sums of one block (series).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Block {
    pub rows: usize,
    pub champion_error: f64,
    pub challenger_error: f64,
}

/// One paired row: its block (series), the actual, the two forecasts.
#[derive(Debug, Clone, Copy)]
pub struct PairedRow {
    pub block: u32,
    pub actual: f64,
    pub champion: f64,
    pub challenger: f64,
}

/// Sums the paired rows per block, in block order (empty blocks dropped).
pub fn blocks(rows: impl IntoIterator<Item = PairedRow>) -> Vec<Block> {
    let mut sums: std::collections::BTreeMap<u32, Block> = Default::default();
    for row in rows {
        let b = sums.entry(row.block).or_default();
        b.rows += 1;
        b.champion_error += (row.champion - row.actual).abs();
        b.challenger_error += (row.challenger - row.actual).abs();
    }
    sums.into_values().collect()
}

/// A seed from the run's inputs (the data, the run date, the two versions):
/// the same inputs give the same seed, so the same decision.
pub fn seed_from(parts: &[&str]) -> u64 {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

/// SplitMix64: a small generator whose sequence is fixed by its definition
/// (a library's generator may change between versions, and with it decisions).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (multiply-shift; the bias is below 2^-50 for any n here).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

fn relative(champion_error: f64, challenger_error: f64) -> f64 {
    if champion_error > 0.0 {
        1.0 - challenger_error / champion_error
    } else {
        0.0
    }
}

/// The `q` quantile of sorted values, linear between order statistics.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// The paired bootstrap over `blocks`: the improvement on all of them and
/// its two-sided interval at `confidence` from `resamples` resamples of
/// as many blocks, drawn with replacement. None with fewer than
/// [`MIN_BLOCKS`] blocks, no champion error at all, confidence outside
/// (0, 1) or no resamples.
pub fn bootstrap(blocks: &[Block], confidence: f64, resamples: u32, seed: u64) -> Option<NoiseEstimate> {
    let n = blocks.len();
    let champion: f64 = blocks.iter().map(|b| b.champion_error).sum();
    let challenger: f64 = blocks.iter().map(|b| b.challenger_error).sum();
    if n < MIN_BLOCKS || champion <= 0.0 || !(confidence > 0.0 && confidence < 1.0) || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64(seed);
    let mut draws: Vec<f64> = (0..resamples)
        .map(|_| {
            let (mut champ, mut chall) = (0.0, 0.0);
            for _ in 0..n {
                let b = &blocks[rng.below(n)];
                champ += b.champion_error;
                chall += b.challenger_error;
            }
            relative(champ, chall)
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Some(NoiseEstimate {
        improvement: relative(champion, challenger),
        confidence,
        lower: quantile(&draws, tail),
        upper: quantile(&draws, 1.0 - tail),
        resamples,
        resampled: "series".into(),
        blocks: n,
        rows: blocks.iter().map(|b| b.rows).sum(),
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `series` series of `days` rows with actual 100 each: the champion's
    /// error per row is `champion(s, d)`, the challenger's `challenger(s, d)`.
    fn rows(
        series: u32,
        days: u32,
        champion: impl Fn(u32, u32) -> f64,
        challenger: impl Fn(u32, u32) -> f64,
    ) -> Vec<Block> {
        blocks((0..series).flat_map(|s| {
            let (champion, challenger) = (&champion, &challenger);
            (0..days).map(move |d| PairedRow {
                block: s,
                actual: 100.0,
                champion: 100.0 + champion(s, d),
                challenger: 100.0 - challenger(s, d),
            })
        }))
    }

    /// Errors that vary by series and day, the same pattern for both models.
    fn wobble(s: u32, d: u32) -> f64 {
        5.0 + ((s * 7 + d * 3) % 11) as f64
    }

    #[test]
    fn a_clear_improvement_on_every_series_is_above_noise() {
        let b = rows(40, 28, wobble, |s, d| 0.9 * wobble(s, d));
        let e = bootstrap(&b, 0.9, 1000, 1).unwrap();
        assert!((e.improvement - 0.1).abs() < 1e-9, "{e:?}");
        assert!(e.lower > 0.09 && e.upper < 0.11, "{e:?}");
        assert!(e.above_noise());
        assert_eq!((e.blocks, e.rows, e.resampled.as_str()), (40, 40 * 28, "series"));
    }

    #[test]
    fn a_small_improvement_from_one_outlier_series_is_within_noise() {
        // 39 series where the challenger is 1% worse, one where it makes no
        // error: pooled it is about 1.5% better, all from one series.
        let b = rows(
            40,
            28,
            wobble,
            |s, d| if s == 7 { 0.0 } else { 1.01 * wobble(s, d) },
        );
        let e = bootstrap(&b, 0.9, 1000, 1).unwrap();
        assert!(e.improvement > 0.005 && e.improvement < 0.03, "{e:?}");
        assert!(e.lower < 0.0 && e.upper > e.improvement, "{e:?}");
        assert!(!e.above_noise());
    }

    #[test]
    fn the_same_seed_gives_the_same_interval_and_another_seed_another() {
        let b = rows(30, 10, wobble, |s, d| {
            wobble(s, d) * if s % 3 == 0 { 0.8 } else { 1.01 }
        });
        let one = bootstrap(&b, 0.9, 500, 42).unwrap();
        assert_eq!(one, bootstrap(&b, 0.9, 500, 42).unwrap());
        let other = bootstrap(&b, 0.9, 500, 43).unwrap();
        assert_eq!(one.improvement, other.improvement);
        assert_ne!((one.lower, one.upper), (other.lower, other.upper));
        assert_eq!(seed_from(&["a", "b"]), seed_from(&["a", "b"]));
        assert_ne!(seed_from(&["a", "b"]), seed_from(&["ab", ""]));
    }

    #[test]
    fn a_wider_confidence_gives_a_wider_interval() {
        let b = rows(30, 10, wobble, |s, d| {
            wobble(s, d) * if s % 3 == 0 { 0.8 } else { 1.01 }
        });
        let narrow = bootstrap(&b, 0.5, 800, 7).unwrap();
        let wide = bootstrap(&b, 0.99, 800, 7).unwrap();
        assert!(wide.lower < narrow.lower && wide.upper > narrow.upper);
        assert!(narrow.lower <= narrow.improvement && narrow.improvement <= narrow.upper);
    }

    #[test]
    fn no_estimate_without_enough_series_or_with_confidence_off() {
        let few = rows(MIN_BLOCKS as u32 - 1, 10, wobble, wobble);
        assert!(bootstrap(&few, 0.9, 100, 1).is_none());
        let enough = rows(MIN_BLOCKS as u32, 10, wobble, wobble);
        assert!(bootstrap(&enough, 0.9, 100, 1).is_some());
        assert!(bootstrap(&enough, 0.0, 100, 1).is_none());
        assert!(bootstrap(&enough, 0.9, 0, 1).is_none());
        let perfect = rows(10, 10, |_, _| 0.0, wobble);
        assert!(bootstrap(&perfect, 0.9, 100, 1).is_none(), "no champion error");
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.0), 0.0);
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert!((quantile(&v, 0.05) - 0.2).abs() < 1e-12);
        assert_eq!(quantile(&v, 1.0), 4.0);
    }
}
