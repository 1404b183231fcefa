//! The lag columns of [`super::build_features`] and its series index, from
//! one pass over the window sorted by series and date.
//!
//! The straightforward way, a left join of the window onto itself per lag
//! on (series keys, date), hashed every string key of every row four times;
//! grouping the rolling and expanding means by the string keys hashed them
//! again. On the sorted window a lag is found by walking each series with a
//! second pointer, and the means are grouped by a series number instead.
//! The values are the same (a lag is a copy of one history value or null;
//! the means are polars' own kernels over the same groups of rows), which a
//! test checks against the join path. Windows the walk does not cover (a
//! null key or date, two rows of one series on one day) take the join path.

use polars::prelude::*;

use crate::mapping::DataMapping;

/// The rows of `frame` in the order of its series keys (each compared as
/// bytes, the first key first), then its date, and the index of that order:
/// what sorting by those columns gives. Each row's keys become a series
/// number, the numbers are ranked by their keys, and the rows ordered by
/// (rank, day) as integers ([`two_key_order`]); the ranks are the index's
/// series numbers. polars' sort on the string columns compared every key of
/// millions of rows, and indexing the sorted frame compared them again (a
/// second and a half of the generated lake's features). None when a key or
/// date is null, or a series has two rows on a day: the caller then joins.
pub(super) fn series_order(
    frame: &DataFrame,
    mapping: &DataMapping,
) -> PolarsResult<Option<(Vec<IdxSize>, SeriesIndex)>> {
    let dates = frame.column(&mapping.date_column)?;
    if dates.null_count() > 0 {
        return Ok(None);
    }
    let days: Vec<i32> = dates.date()?.physical().into_no_null_iter().collect();
    let n = days.len();
    // The series of each row, the keys folded in one at a time: its number
    // and, per number, its keys.
    let mut ids = vec![0u32; n];
    let mut tuples: Vec<Vec<&str>> = vec![Vec::new()];
    for key in &mapping.series_keys {
        let column = frame.column(key)?;
        if column.null_count() > 0 {
            return Ok(None);
        }
        let mut numbers: PlHashMap<(u32, &str), u32> = PlHashMap::default();
        let mut next: Vec<Vec<&str>> = Vec::new();
        for (id, value) in ids
            .iter_mut()
            .zip(column.str()?.iter().map(Option::unwrap_or_default))
        {
            *id = match numbers.get(&(*id, value)) {
                Some(&number) => number,
                None => {
                    let number = u32::try_from(next.len())
                        .map_err(|_| polars_err!(ComputeError: "too many series"))?;
                    let mut keys = tuples[*id as usize].clone();
                    keys.push(value);
                    next.push(keys);
                    numbers.insert((*id, value), number);
                    number
                }
            };
        }
        tuples = next;
    }
    let mut by_keys: Vec<u32> = (0..tuples.len() as u32).collect();
    by_keys.sort_unstable_by(|&a, &b| tuples[a as usize].cmp(&tuples[b as usize]));
    let mut rank = vec![0u32; tuples.len()];
    for (r, &id) in by_keys.iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    let ranks: Vec<u32> = ids.iter().map(|&id| rank[id as usize]).collect();
    let order = two_key_order(&ranks, &days);
    let ids = order.iter().map(|&row| ranks[row as usize]).collect();
    let days = order.iter().map(|&row| days[row as usize]).collect();
    Ok(SeriesIndex::new(ids, days).map(|index| (order, index)))
}

/// The rows ordered by (`major`, `minor`), both given per row: two stable
/// counting sorts (by `minor`, then by `major`) when each key spans few
/// enough values, else one comparison sort. Where no two rows share both
/// keys this is the one sorted order, whatever sort gives it.
pub(super) fn two_key_order<A, B>(major: &[A], minor: &[B]) -> Vec<IdxSize>
where
    A: Copy + Ord + Into<i64> + Sync,
    B: Copy + Ord + Into<i64> + Sync,
{
    use rayon::prelude::*;
    let n = major.len();
    let identity: Vec<IdxSize> = (0..n as IdxSize).collect();
    match (span(minor), span(major)) {
        (Some(low), Some(high)) => {
            let by_minor = stable_by(&identity, |row| minor[row].into() - low.0, low.1);
            stable_by(&by_minor, |row| major[row].into() - high.0, high.1)
        }
        _ => {
            let mut order = identity;
            order.par_sort_unstable_by_key(|&i| (major[i as usize], minor[i as usize]));
            order
        }
    }
}

/// The smallest value of `keys` and how many values lie from it to the
/// largest, when that is at most a few times the rows (a counting sort's
/// buckets); None otherwise.
fn span<K: Copy + Into<i64>>(keys: &[K]) -> Option<(i64, usize)> {
    let (lo, hi) = keys
        .iter()
        .map(|&k| k.into())
        .fold((i64::MAX, i64::MIN), |(lo, hi), k| (lo.min(k), hi.max(k)));
    if keys.is_empty() {
        return Some((0, 1));
    }
    let buckets = usize::try_from(hi - lo).ok()?.checked_add(1)?;
    (buckets <= 4 * keys.len() + 1024).then_some((lo, buckets))
}

/// `rows` reordered stably by `key(row)`, each key below `buckets`.
fn stable_by(rows: &[IdxSize], key: impl Fn(usize) -> i64, buckets: usize) -> Vec<IdxSize> {
    let mut starts = vec![0usize; buckets + 1];
    for &row in rows {
        starts[key(row as usize) as usize + 1] += 1;
    }
    for b in 0..buckets {
        starts[b + 1] += starts[b];
    }
    let mut out = vec![0 as IdxSize; rows.len()];
    for &row in rows {
        let k = key(row as usize) as usize;
        out[starts[k]] = row;
        starts[k] += 1;
    }
    out
}

/// The series of each row of a frame in (series keys, date) order, and each
/// row's day ([`series_order`]).
pub(super) struct SeriesIndex {
    /// Per row: the series number, counted up in sort order (so numbers
    /// order as the keys do).
    ids: Vec<u32>,
    days: Vec<i32>,
    /// Per series: its first row (and one past the last at the end).
    starts: Vec<usize>,
}

impl SeriesIndex {
    /// The index of rows in (series, day) order, given each row's series
    /// number (counted up from 0 in that order) and day. None when a series
    /// has two rows on a day.
    fn new(ids: Vec<u32>, days: Vec<i32>) -> Option<Self> {
        let n = days.len();
        let mut starts = Vec::new();
        for i in 0..n {
            if i == 0 || ids[i] != ids[i - 1] {
                starts.push(i);
            } else if days[i] <= days[i - 1] {
                return None;
            }
        }
        starts.push(n);
        Some(Self { ids, days, starts })
    }

    /// The series numbers as a column named `name`.
    pub(super) fn id_column(&self, name: &str) -> Column {
        Column::new(name.into(), self.ids.as_slice())
    }

    /// For each row, `history` of the same series `lag` days earlier (null
    /// when that day has no row or no history): the join's result.
    pub(super) fn lag(&self, history: &[Option<f64>], lag: u32) -> Vec<Option<f64>> {
        let mut out = vec![None; self.days.len()];
        for series in self.starts.windows(2) {
            let (start, end) = (series[0], series[1]);
            let mut p = start;
            for (i, slot) in out.iter_mut().enumerate().take(end).skip(start) {
                let want = i64::from(self.days[i]) - i64::from(lag);
                while p < i && i64::from(self.days[p]) < want {
                    p += 1;
                }
                if p < i && i64::from(self.days[p]) == want {
                    *slot = history[p];
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_key_order_is_the_sorted_order_by_counting_or_comparing() {
        // Distinct (major, minor) pairs in a scrambled order.
        let pairs: Vec<(u32, i32)> = (0..600u32)
            .map(|i| ((i * 7919) % 600 / 20, -((i * 7919 % 600 % 20) as i32)))
            .collect();
        let major: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let minor: Vec<i32> = pairs.iter().map(|p| p.1).collect();
        let mut expected: Vec<IdxSize> = (0..pairs.len() as IdxSize).collect();
        expected.sort_by_key(|&i| pairs[i as usize]);
        assert!(
            span(&major).is_some() && span(&minor).is_some(),
            "narrow keys: counting"
        );
        assert_eq!(two_key_order(&major, &minor), expected);
        // A key spread far wider than the rows: the comparison sort.
        let wide: Vec<i32> = minor.iter().map(|&m| m * 1_000_000).collect();
        assert!(span(&wide).is_none());
        assert_eq!(two_key_order(&major, &wide), expected);
        assert!(two_key_order::<u32, i32>(&[], &[]).is_empty());
    }
}
