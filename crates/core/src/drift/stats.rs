//! The statistics of drift, as pure functions on numbers: population stability
//! index (PSI) over bins cut at a reference's quantiles, with a floor for empty
//! bins; the two-sample Kolmogorov-Smirnov distance, also of one part of a
//! sample against the rest of it (leave-one-out, without copying); and the
//! thresholds learned from a statistic's values over the reference's own days.

/// The share an empty bin counts as, so PSI stays finite (ln 0 is not).
pub const PSI_FLOOR: f64 = 1e-4;
/// The documented fallback PSI thresholds (the usual rule of thumb): below
/// 0.1 no real change, 0.1-0.25 a moderate one, above 0.25 a large one.
pub const PSI_WARN: f64 = 0.1;
pub const PSI_ALERT: f64 = 0.25;
/// Kolmogorov's c(alpha) for the two-sample test: alpha 0.01 (warn) and
/// 0.001 (alert): the KS fallback thresholds are c(alpha) sqrt((n+m)/(n m)).
const KS_C_WARN: f64 = 1.63;
const KS_C_ALERT: f64 = 1.95;

/// The interior cut points of `bins` bins holding equal shares of `sorted`
/// (its quantiles), duplicates removed: a value `v` falls in bin `i` when
/// `i` cut points are <= `v`. Empty input gives no cut (one bin).
pub fn quantile_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = Vec::with_capacity(bins.saturating_sub(1));
    if sorted.is_empty() {
        return edges;
    }
    for i in 1..bins {
        let at = (i * sorted.len()) / bins;
        let edge = sorted[at.min(sorted.len() - 1)];
        if edges.last() != Some(&edge) {
            edges.push(edge);
        }
    }
    // A cut at the smallest value would leave its bin empty by construction.
    if edges.first() == sorted.first() {
        edges.remove(0);
    }
    edges
}

/// The bin of `value` for cut points `edges` (see [`quantile_edges`]).
pub fn bin_of(edges: &[f64], value: f64) -> usize {
    edges.partition_point(|&e| e <= value)
}

/// Counts of `values` per bin (`edges.len() + 1` bins).
pub fn bin_counts(edges: &[f64], values: &[f64]) -> Vec<usize> {
    let mut counts = vec![0; edges.len() + 1];
    for &v in values {
        counts[bin_of(edges, v)] += 1;
    }
    counts
}

/// PSI = sum over bins of (actual - expected) ln(actual / expected), on the
/// shares of two sets of bin counts, each share floored at [`PSI_FLOOR`].
/// 0 when either side is empty.
pub fn psi(expected: &[usize], actual: &[usize]) -> f64 {
    let (ne, na) = (expected.iter().sum::<usize>(), actual.iter().sum::<usize>());
    if ne == 0 || na == 0 {
        return 0.0;
    }
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let e = (e as f64 / ne as f64).max(PSI_FLOOR);
            let a = (a as f64 / na as f64).max(PSI_FLOOR);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// How many of `sorted` are <= `x`, and < `x`.
fn ranks(sorted: &[f64], x: f64) -> (usize, usize) {
    (
        sorted.partition_point(|&v| v <= x),
        sorted.partition_point(|&v| v < x),
    )
}

/// The KS distance sup |F_part - F_other| where F_other is given by its
/// counts <= x and < x (`other(x)`) out of `n_other`. The supremum of the
/// difference of two step functions is reached at a point of `part` (from the
/// right) or just before one (from the left), so only those are visited.
fn ks_with(part: &[f64], n_other: usize, other: impl Fn(f64) -> (usize, usize)) -> f64 {
    if part.is_empty() || n_other == 0 {
        return 0.0;
    }
    let (np, no) = (part.len() as f64, n_other as f64);
    let mut best: f64 = 0.0;
    let mut i = 0;
    while i < part.len() {
        let x = part[i];
        let below = i;
        while i < part.len() && part[i] == x {
            i += 1;
        }
        let (other_le, other_lt) = other(x);
        best = best
            .max(i as f64 / np - other_le as f64 / no)
            .max(other_lt as f64 / no - below as f64 / np);
    }
    best
}

/// The two-sample Kolmogorov-Smirnov distance of two sorted samples.
pub fn ks(a: &[f64], b: &[f64]) -> f64 {
    ks_with(a, b.len(), |x| ranks(b, x))
}

/// The KS distance of `part` (sorted) against the rest of `all` (sorted,
/// `part` included in it): `all` without `part`, without building it.
pub fn ks_against_rest(all: &[f64], part: &[f64]) -> f64 {
    ks_with(part, all.len() - part.len(), |x| {
        let (all_le, all_lt) = ranks(all, x);
        let (part_le, part_lt) = ranks(part, x);
        (all_le - part_le, all_lt - part_lt)
    })
}

/// Warn and alert levels of one statistic.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Threshold {
    pub warn: f64,
    pub alert: f64,
}

/// Thresholds from a statistic's values over the reference's own days (or
/// weeks), each against the rest: mean + `warn_sd` and mean + `alert_sd`
/// standard deviations, never below `floor` (a statistic that never moved in
/// the window would otherwise alert on any change at all). `None` with fewer
/// than `min_values` values.
pub fn learned(
    values: &[f64],
    warn_sd: f64,
    alert_sd: f64,
    floor: f64,
    min_values: usize,
) -> Option<Threshold> {
    if values.len() < min_values.max(2) {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    Some(Threshold {
        warn: (mean + warn_sd * sd).max(floor),
        alert: (mean + alert_sd * sd).max(floor),
    })
}

/// The documented PSI fallback: 0.1 warn, 0.25 alert.
pub fn psi_fallback() -> Threshold {
    Threshold {
        warn: PSI_WARN,
        alert: PSI_ALERT,
    }
}

/// The KS fallback for samples of `n` and `m` values: the distances a
/// two-sample KS test calls significant at alpha 0.01 (warn) and 0.001 (alert).
pub fn ks_fallback(n: usize, m: usize) -> Threshold {
    let scale = if n == 0 || m == 0 {
        1.0
    } else {
        ((n + m) as f64 / (n as f64 * m as f64)).sqrt()
    };
    Threshold {
        warn: (KS_C_WARN * scale).min(1.0),
        alert: (KS_C_ALERT * scale).min(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn quantile_edges_cut_equal_shares_and_drop_ties() {
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(
            quantile_edges(&ten, 10),
            [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
        );
        assert_eq!(bin_counts(&quantile_edges(&ten, 10), &ten), vec![1; 10]);
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile_edges(&twenty, 4), [6.0, 11.0, 16.0]);
        // A binary column: 6 zeros and 4 ones give the bins {0} and {1}.
        let binary = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(quantile_edges(&binary, 10), [1.0]);
        assert_eq!(bin_counts(&[1.0], &binary), [6, 4]);
        assert!(quantile_edges(&[3.0; 5], 10).is_empty(), "a constant: one bin");
        assert!(quantile_edges(&[], 10).is_empty());
    }

    #[test]
    fn psi_by_hand() {
        // Shares 0.5/0.5 against 0.25/0.75:
        // (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5) = 0.25 ln 2 + 0.25 ln 1.5.
        let expected = 0.25 * 2f64.ln() + 0.25 * 1.5f64.ln();
        assert!(close(psi(&[50, 50], &[1, 3]), expected));
        assert!(close(psi(&[7, 3], &[70, 30]), 0.0), "same shares");
        // An empty bin counts as the floor: 1.0/0.0 against 0.5/0.5 gives
        // (0.5 - 1) ln(0.5/1) + (0.5 - 1e-4) ln(0.5/1e-4).
        let floored = -0.5 * 0.5f64.ln() + (0.5 - PSI_FLOOR) * (0.5 / PSI_FLOOR).ln();
        assert!(close(psi(&[10, 0], &[1, 1]), floored));
        assert_eq!(psi(&[], &[]), 0.0);
        assert_eq!(psi(&[0, 0], &[1, 1]), 0.0, "nothing to compare with");
    }

    #[test]
    fn ks_by_hand() {
        // F_a and F_b: at 1: 1/3 vs 0; at 2: 2/3 vs 1/2; at 3: 1 vs 1/2; at 4: 1 vs 1.
        assert!(close(ks(&[1.0, 2.0, 3.0], &[2.0, 4.0]), 0.5));
        assert!(close(ks(&[2.0, 4.0], &[1.0, 2.0, 3.0]), 0.5), "symmetric");
        assert!(close(ks(&[1.0, 2.0], &[3.0, 4.0]), 1.0), "apart");
        assert!(close(ks(&[1.0, 2.0, 2.0], &[1.0, 2.0, 2.0]), 0.0), "same");
        // Ties across samples: a = {0,0,1}, b = {0,1,1}: at 0: 2/3 vs 1/3.
        assert!(close(ks(&[0.0, 0.0, 1.0], &[0.0, 1.0, 1.0]), 1.0 / 3.0));
        // b entirely below a's first point: the left-limit side finds it.
        assert!(close(ks(&[5.0, 6.0], &[1.0, 2.0, 7.0]), 2.0 / 3.0));
        assert_eq!(ks(&[], &[1.0]), 0.0);
    }

    #[test]
    fn ks_against_the_rest_is_ks_against_the_rest_built() {
        let part = [1.0, 2.0, 2.0, 5.0];
        let rest = [0.0, 2.0, 3.0, 3.0, 4.0, 6.0];
        let mut all: Vec<f64> = part.iter().chain(&rest).copied().collect();
        all.sort_by(f64::total_cmp);
        assert!(close(ks_against_rest(&all, &part), ks(&part, &rest)));
        assert!(ks(&part, &rest) > 0.0);
    }

    #[test]
    fn thresholds_from_the_days_or_the_fallback() {
        // Mean 2, sample sd 1 (values 1, 2, 3).
        let t = learned(&[1.0, 2.0, 3.0], 2.0, 3.0, 0.0, 3).unwrap();
        assert!(close(t.warn, 4.0) && close(t.alert, 5.0));
        let floored = learned(&[0.0, 0.0, 0.0], 2.0, 3.0, 0.1, 3).unwrap();
        assert_eq!((floored.warn, floored.alert), (0.1, 0.1));
        assert!(learned(&[1.0, 2.0], 2.0, 3.0, 0.0, 3).is_none(), "too few days");
        assert_eq!(
            psi_fallback(),
            Threshold {
                warn: 0.1,
                alert: 0.25
            }
        );
        // n = m = 100: sqrt(200 / 10000) = 0.1414...
        let k = ks_fallback(100, 100);
        assert!(close(k.alert, 1.95 * 0.02f64.sqrt()) && close(k.warn, 1.63 * 0.02f64.sqrt()));
    }
}
