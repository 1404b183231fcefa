//! Decoding Parquet without a damaged file taking the process down: polars'
//! reader panics on some damaged metadata (a Thrift value out of range, a
//! bad bool field) instead of returning an error. [`decode`] turns such a
//! panic, raised on the calling thread or on one of polars' workers (whose
//! panics reach the caller), into an error. The panic hook logs such a
//! panic (on a thread inside a guarded decode, or on a polars worker while
//! one runs) as a warning; any other panic goes to the previous hook.
//! Some damage makes the reader ask for an impossible allocation instead,
//! which aborts the process: no guard catches that. Ingested day files
//! (sales and plans) are checked against their content-addressed names
//! before they are decoded (`Lake::get_day_file`); scores, attribute and
//! calendar tables and a user's own Parquet input are not.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::*;

/// How many guarded decodes are running now, on any thread.
static GUARDED: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

thread_local! {
    /// How many guarded decodes this thread is inside.
    static HERE: Cell<usize> = const { Cell::new(0) };
}

/// Whether a panic on this thread belongs to a guarded decode: this thread
/// runs one, or it is a polars worker while one runs anywhere.
fn in_decode() -> bool {
    HERE.with(Cell::get) > 0
        || (GUARDED.load(Ordering::SeqCst) > 0
            && std::thread::current()
                .name()
                .is_some_and(|name| name.starts_with("polars")))
}

/// Chains a hook before the one in place: a panic of a guarded decode is a
/// warning (it becomes that decode's error), any other panic is the
/// previous hook's.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if in_decode() {
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
    HERE.with(|here| here.set(here.get() + 1));
    let outcome = panic::catch_unwind(AssertUnwindSafe(read));
    HERE.with(|here| here.set(here.get() - 1));
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
        assert!(!in_decode(), "the count is back to zero on this thread");
        // Another thread's panic during a decode here is not the decode's.
        let during = decode(|| {
            Ok(std::thread::Builder::new()
                .name("not-polars".into())
                .spawn(in_decode)
                .unwrap()
                .join()
                .unwrap())
        });
        assert!(!during.unwrap(), "a thread outside the decode is not in it");
    }

    /// A damaged byte (found by setting each byte of this file to a few
    /// values, with polars 0.55.2: another version may need another byte)
    /// on which polars' reader panics ("Thrift out of range"): the
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
