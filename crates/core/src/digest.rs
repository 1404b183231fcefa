//! Content addresses: the SHA-256 that names a model version (and
//! fingerprints data), computed once per artifact, and the short form shown to
//! people.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash a content-addressed file name promises: `part-<16 hex>.parquet`
/// is named by the first 16 hex digits of its bytes' SHA-256 (the lake's
/// partitions, predictions and scores). `None` for any other name.
pub fn promised_by_name(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?;
    let hash = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    (hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
}

/// Whether bytes read under `key` are what its name promises (a name that
/// promises nothing is not checked): a damaged or replaced file is found
/// before it is decoded.
pub fn matches_name(key: &str, bytes: &[u8]) -> bool {
    promised_by_name(key).is_none_or(|hash| sha256_hex(bytes).starts_with(hash))
}

/// How many hex digits of a hash people are shown.
pub const SHORT: usize = 12;

/// The first [`SHORT`] characters of a hash (all of it when shorter); never panics.
pub fn short(hash: &str) -> &str {
    hash.char_indices()
        .nth(SHORT)
        .map_or(hash, |(end, _)| &hash[..end])
}

/// Bytes sealed with their SHA-256: the hash is computed here and only here,
/// so a version's name and its bytes cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    bytes: Vec<u8>,
    version: String,
}

impl Sealed {
    pub fn new(bytes: Vec<u8>) -> Self {
        let version = sha256_hex(&bytes);
        Self { bytes, version }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The hex SHA-256 of the bytes: the version's name.
    pub fn version(&self) -> &str {
        &self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hashes_never_panic() {
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short(""), "");
        assert_eq!(short("ééééééééééééé"), "éééééééééééé");
    }

    #[test]
    fn sealed_bytes_carry_their_hash() {
        let sealed = Sealed::new(b"abc".to_vec());
        assert_eq!(
            sealed.version(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sealed.bytes(), b"abc");
    }
}
