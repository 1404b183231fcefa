//! Decoding Parquet without a damaged file taking the process down: polars'
//! reader panics on some damaged metadata (a Thrift value out of range, a
//! bad bool field) instead of returning an error. [`decode`] turns such a
//! panic, raised on the calling thread or on one of polars' workers (whose
//! panics reach the caller), into an error; while a guarded decode runs,
//! the panic hook logs a panic as a warning instead of printing a crash.
//! Some damage makes the reader ask for an impossible allocation instead,
//! which aborts the process: no guard catches that, so the lake's files are
//! checked against their content-addressed names before they are decoded
//! (`digest::matches_name`); a user's own Parquet input has no such check.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::*;

/// How many guarded decodes are running now, on any thread.
static GUARDED: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

/// Chains a hook before the one in place: a panic while a guarded decode
/// runs is a warning (it becomes that decode's error), any other panic is
/// the previous hook's.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.load(Ordering::SeqCst) > 0 {
                tracing::warn!("a Parquet decode panicked (it is refused as damaged): {info}");
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `read` (a Parquet decode); a panic inside it is an error saying the
/// reader failed on the file, with the panic's message.
pub fn decode<T>(read: impl FnOnce() -> PolarsResult<T>) -> PolarsResult<T> {
    install_hook();
    GUARDED.fetch_add(1, Ordering::SeqCst);
    let outcome = panic::catch_unwind(AssertUnwindSafe(read));
    GUARDED.fetch_sub(1, Ordering::SeqCst);
    outcome.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(polars_err!(ComputeError: "damaged: the Parquet reader failed on it ({message})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::{decode_parquet, encode_parquet};

    #[test]
    fn a_panic_inside_is_an_error() {
        let err = decode(|| -> PolarsResult<()> { panic!("thrift out of range") }).unwrap_err();
        assert!(err.to_string().contains("thrift out of range"), "{err}");
        assert_eq!(decode(|| Ok(7)).unwrap(), 7);
    }

    /// A damaged byte (found by setting each byte of this file to a few
    /// values) on which polars' reader panics ("Thrift out of range"): the
    /// lake's decoder returns an error instead. Other bytes of the same file
    /// make the reader ask for 2^61 bytes, an abort no guard can catch: the
    /// lake checks a file's bytes against its name before decoding it.
    #[test]
    fn a_damaged_byte_that_panics_the_reader_is_an_error() {
        let mut df = df!(
            "date" => [20_000i32, 20_001, 20_002],
            "store" => ["a", "b", "c"],
            "sales" => [1.0f64, 2.5, 4.0],
        )
        .unwrap();
        let mut bytes = encode_parquet(&mut df).unwrap();
        assert!(decode_parquet(bytes.clone()).is_ok());
        bytes[41] = 0;
        let err = decode_parquet(bytes).unwrap_err();
        assert!(err.to_string().contains("the Parquet reader failed"), "{err}");
    }
}
