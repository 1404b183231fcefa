//! Shards of the series: which of N shards a series belongs to, the parsed
//! `--shard K/N` and `--fan-in N` values, and keeping a frame's rows of one
//! shard. Every sharded step (predict today; retrain and monitor next) uses
//! this one assignment, so a series lands in the same shard in every step
//! and on every machine.
//!
//! The assignment is a stable hash, never std's `DefaultHasher` (whose
//! seeds may change between Rust releases): the SHA-256 of the series' key
//! values, each as its byte length (8 bytes, little-endian) then its UTF-8
//! bytes, in the mapping's key order; the first 8 bytes of the digest as a
//! big-endian integer, modulo N. The length prefix keeps ("a/b", "c") and
//! ("a", "b/c") apart. Changing any of this moves series between shards:
//! the checked-in expectations in the tests guard it.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use polars::prelude::*;
use sha2::{Digest, Sha256};

/// The most shards a run may be split into.
pub const MAX_SHARDS: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error(
        "{value:?} is not K/N (this shard's number K of N shards, 0 <= K < N <= {MAX_SHARDS}): {problem}"
    )]
    Shard { value: String, problem: String },
    #[error("{value:?} is not a number of shards between 1 and {MAX_SHARDS}")]
    Count { value: String },
}

/// One shard of N: `K/N` on the command line, 0 <= K < N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub k: u32,
    pub n: u32,
}

impl Shard {
    pub fn new(k: u32, n: u32) -> Result<Self, ShardError> {
        let bad = |problem: String| ShardError::Shard {
            value: format!("{k}/{n}"),
            problem,
        };
        if n == 0 || n > MAX_SHARDS {
            return Err(bad(format!("N must be between 1 and {MAX_SHARDS}")));
        }
        if k >= n {
            return Err(bad(format!(
                "K must be below N ({k} >= {n}; shards are numbered from 0)"
            )));
        }
        Ok(Self { k, n })
    }

    /// Whether the series with these key values is in this shard.
    pub fn holds<S: AsRef<str>>(&self, keys: &[S]) -> bool {
        shard_of(keys, self.n) == self.k
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, ShardError> {
        let bad = |problem: &str| ShardError::Shard {
            value: text.to_string(),
            problem: problem.to_string(),
        };
        let (k, n) = text.split_once('/').ok_or_else(|| bad("no \"/\""))?;
        let number = |part: &str, what: &str| -> Result<u32, ShardError> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("{what} {part:?} is not a whole number")));
            }
            part.parse()
                .map_err(|_| bad(&format!("{what} {part:?} is too large")))
        };
        let (k, n) = (number(k, "K")?, number(n, "N")?);
        Self::new(k, n).map_err(|e| match e {
            ShardError::Shard { problem, .. } => bad(&problem),
            other => other,
        })
    }
}

/// Parses `--fan-in N`: a number of shards, 1 ..= [`MAX_SHARDS`].
pub fn parse_count(text: &str) -> Result<u32, ShardError> {
    let bad = || ShardError::Count {
        value: text.to_string(),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_SHARDS).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

/// The shard (0 .. n-1) of the series with these key values, in the
/// mapping's key order; see the module doc. `n` = 0 is treated as 1.
pub fn shard_of<S: AsRef<str>>(keys: &[S], n: u32) -> u32 {
    let mut hasher = Sha256::new();
    for key in keys {
        let bytes = key.as_ref().as_bytes();
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(n.max(1))) as u32
}

/// The rows of `frame` whose series (the string columns `keys`) are in
/// `shard`, in their order. Each distinct series is hashed once. A row with
/// a null key is kept out (validated windows have none).
pub fn filter_frame(frame: &DataFrame, keys: &[String], shard: Shard) -> PolarsResult<DataFrame> {
    if shard.n == 1 {
        return Ok(frame.clone());
    }
    let columns: Vec<StringChunked> = keys
        .iter()
        .map(|k| Ok(frame.column(k)?.str()?.clone()))
        .collect::<PolarsResult<_>>()?;
    let mut iters: Vec<_> = columns.iter().map(|c| c.iter()).collect();
    let mut memo: HashMap<Vec<&str>, bool> = HashMap::new();
    let mut mask = Vec::with_capacity(frame.height());
    for _ in 0..frame.height() {
        let row: Option<Vec<&str>> = iters.iter_mut().map(|it| it.next().flatten()).collect();
        let keep = match row {
            Some(row) => match memo.get(&row) {
                Some(&keep) => keep,
                None => {
                    let keep = shard.holds(&row);
                    memo.insert(row, keep);
                    keep
                }
            },
            None => false,
        };
        mask.push(keep);
    }
    frame.filter(&BooleanChunked::from_slice("shard".into(), &mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assignment_is_stable() {
        // Computed once (by an independent Python hashlib script) and checked in: a change here
        // moves series between shards, which a running sharded deployment
        // must not see silently.
        let expected: [(&[&str], u32, u32); 6] = [
            (&["1"], 3, SHARD_1_OF_3),
            (&["2"], 3, SHARD_2_OF_3),
            (&["1115"], 3, SHARD_1115_OF_3),
            (&["store-7", "item-42"], 16, SHARD_7_42_OF_16),
            (&["a/b", "c"], 1000, SHARD_AB_C_OF_1000),
            (&["a", "b/c"], 1000, SHARD_A_BC_OF_1000),
        ];
        for (keys, n, shard) in expected {
            assert_eq!(shard_of(keys, n), shard, "{keys:?} of {n}");
        }
        assert_eq!(shard_of(&["x"], 1), 0);
    }

    const SHARD_1_OF_3: u32 = 0;
    const SHARD_2_OF_3: u32 = 2;
    const SHARD_1115_OF_3: u32 = 2;
    const SHARD_7_42_OF_16: u32 = 1;
    const SHARD_AB_C_OF_1000: u32 = 395;
    const SHARD_A_BC_OF_1000: u32 = 536;

    #[test]
    fn series_spread_evenly() {
        for n in [2u32, 3, 7, 16] {
            let mut counts = vec![0usize; n as usize];
            for store in 1..=3000 {
                counts[shard_of(&[store.to_string()], n) as usize] += 1;
            }
            let mean = 3000.0 / f64::from(n);
            for (k, &c) in counts.iter().enumerate() {
                assert!(
                    (c as f64 - mean).abs() < 0.15 * mean,
                    "shard {k}/{n} holds {c} of 3000 series (mean {mean})"
                );
            }
        }
    }

    #[test]
    fn every_series_is_in_exactly_one_shard() {
        for store in 0..200 {
            let keys = [format!("{store}"), "x".to_string()];
            let holders = (0..5).filter(|&k| Shard { k, n: 5 }.holds(&keys)).count();
            assert_eq!(holders, 1);
        }
    }

    #[test]
    fn shards_parse_and_refuse() {
        assert_eq!("0/1".parse::<Shard>(), Ok(Shard { k: 0, n: 1 }));
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { k: 2, n: 3 }));
        assert_eq!(Shard { k: 2, n: 3 }.to_string(), "2/3");
        for bad in [
            "",
            "3",
            "3/3",
            "4/3",
            "0/0",
            "-1/3",
            "1/-3",
            "a/3",
            "1/b",
            "1/3/5",
            " 1/3",
            "1 /3",
            "+1/3",
            "1/4097",
            "99999999999/3",
            "1.0/3",
            "/3",
            "1/",
        ] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert_eq!(parse_count("3"), Ok(3));
        assert_eq!(parse_count("4096"), Ok(MAX_SHARDS));
        for bad in ["0", "", "-1", "4097", "x", "3/3", "1e3"] {
            assert!(parse_count(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filtering_keeps_the_rows_of_the_shard_in_order() {
        let frame = df!(
            "store" => ["1", "2", "1", "3", "2", "4"],
            "item" => ["a", "a", "a", "b", "a", "b"],
            "sales" => [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        )
        .unwrap();
        let keys = vec!["store".to_string(), "item".to_string()];
        let mut total = 0;
        for k in 0..3 {
            let shard = Shard { k, n: 3 };
            let part = filter_frame(&frame, &keys, shard).unwrap();
            total += part.height();
            let stores: Vec<&str> = part
                .column("store")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .flatten()
                .collect();
            let items: Vec<&str> = part
                .column("item")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .flatten()
                .collect();
            for (s, i) in stores.iter().zip(&items) {
                assert!(shard.holds(&[*s, *i]));
            }
            let sales: Vec<f64> = part
                .column("sales")
                .unwrap()
                .f64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            assert!(sales.windows(2).all(|w| w[0] < w[1]), "order kept: {sales:?}");
        }
        assert_eq!(total, frame.height());
    }
}
