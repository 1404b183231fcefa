//! Seeded samples of a window's rows that do not depend on which other rows
//! are there: each row gets a hash of its series keys, its date and a seed,
//! and a sample of k rows is the k with the smallest hashes ("bottom-k"),
//! returned in row order. The fit's rows (`train::fit_rows`) and the drift
//! check's rows per day (`drift`) are drawn this way, so a sharded retrain
//! (each shard keeps its own bottom k, the fit the bottom k of their union)
//! draws exactly the rows a single-machine run draws on the same window.
//!
//! The hash is fixed by its definition (FNV-1a 64 of the keys, each as its
//! byte length, 8 bytes little-endian, then its UTF-8 bytes; mixed with the
//! date's day number and the seed by SplitMix64's finalizer), never std's
//! `DefaultHasher`, so samples stay the same across Rust releases.

use polars::prelude::*;

use crate::mapping::DataMapping;

/// SplitMix64's output function: a bijection of u64 that mixes every bit.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
}

/// The hash of one row: its series key values (in the mapping's order), its
/// date as days since 1970-01-01, and `seed`.
pub fn row_hash<S: AsRef<str>>(keys: &[S], day: i32, seed: u64) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325;
    for key in keys {
        let bytes = key.as_ref().as_bytes();
        h = fnv1a(h, &(bytes.len() as u64).to_le_bytes());
        h = fnv1a(h, bytes);
    }
    mix(h ^ mix((day as i64 as u64) ^ mix(seed)))
}

/// The hash of every row of `frame` (its series key columns, strings, and
/// its date column); a row with a missing key or date hashes them as empty
/// and day 0 (validated windows have none).
pub fn row_hashes(frame: &DataFrame, mapping: &DataMapping, seed: u64) -> PolarsResult<Vec<u64>> {
    let keys: Vec<StringChunked> = mapping
        .series_keys
        .iter()
        .map(|k| Ok(frame.column(k)?.str()?.clone()))
        .collect::<PolarsResult<_>>()?;
    let days = frame.column(&mapping.date_column)?.cast(&DataType::Int32)?;
    let days = days.i32()?;
    let mut iters: Vec<_> = keys.iter().map(|c| c.iter()).collect();
    let mut out = Vec::with_capacity(frame.height());
    let mut row: Vec<&str> = Vec::with_capacity(keys.len());
    for day in days.iter() {
        row.clear();
        row.extend(iters.iter_mut().map(|it| it.next().flatten().unwrap_or("")));
        out.push(row_hash(&row, day.unwrap_or(0), seed));
    }
    Ok(out)
}

/// The `k` of `rows` with the smallest `hashes[row]` (ties: the lower row),
/// in ascending row order; every row when there are at most `k`.
pub fn bottom_k(rows: &[usize], hashes: &[u64], k: usize) -> Vec<usize> {
    if rows.len() <= k {
        return rows.to_vec();
    }
    let mut ranked: Vec<(u64, usize)> = rows.iter().map(|&r| (hashes[r], r)).collect();
    ranked.select_nth_unstable(k - 1);
    let mut picked: Vec<usize> = ranked[..k].iter().map(|&(_, r)| r).collect();
    picked.sort_unstable();
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable() {
        // Checked in: a change here changes every sampled fit and drift check.
        assert_eq!(mix(0), 0xE220_A839_7B1D_CDAF);
        let a = row_hash(&["1", "a"], 19_000, 42);
        assert_eq!(a, row_hash(&["1", "a"], 19_000, 42));
        assert_ne!(a, row_hash(&["1", "a"], 19_001, 42));
        assert_ne!(a, row_hash(&["1", "a"], 19_000, 43));
        assert_ne!(row_hash(&["a/b", "c"], 0, 0), row_hash(&["a", "b/c"], 0, 0));
    }

    #[test]
    fn bottom_k_of_a_union_is_the_bottom_k_of_the_parts_bottom_k() {
        let hashes: Vec<u64> = (0..10_000u64).map(mix).collect();
        let all: Vec<usize> = (0..10_000).collect();
        let global = bottom_k(&all, &hashes, 700);
        assert_eq!(global.len(), 700);
        assert!(global.windows(2).all(|w| w[0] < w[1]));
        // Three "shards" by row number mod 3, each keeping its own bottom 700.
        let mut union: Vec<usize> = (0..3)
            .flat_map(|s| {
                let part: Vec<usize> = all.iter().copied().filter(|r| r % 3 == s).collect();
                bottom_k(&part, &hashes, 700)
            })
            .collect();
        union.sort_unstable();
        assert_eq!(bottom_k(&union, &hashes, 700), global);
        assert_eq!(bottom_k(&all[..500], &hashes, 700), &all[..500]);
    }
}
