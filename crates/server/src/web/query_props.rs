//! Property tests of the pages' query parsing: the chain table's `sort` and
//! `dir`, the login page's `next` (through `local_path`, the guard against an
//! open redirect) and the admin page's `done` and `subject`. Whatever the raw
//! query string, each gives a value or a 400 naming the parameter, never a
//! panic; `local_path` always gives a path on this site.

use proptest::prelude::*;
use url::Url;

use super::admin::{Done, done_message};
use super::chain::{Figures, Sort, sorted};
use super::login::local_path;
use super::view::query_values;
use crate::error::ApiError;

/// 256 cases a property (proptest's default; `PROPTEST_CASES` sets more for
/// a deeper search); failures are not written into the source tree (a case
/// found failing is kept as a named test instead).
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text built from pieces that matter to a URL or a query (separators,
/// slashes, schemes, whitespace and controls, escapes, non-ASCII) or any text.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "/",
        "//",
        "\\",
        "/\\",
        "\t",
        "\n",
        "\r",
        " ",
        "\u{0}",
        "\u{7f}",
        "\u{85}",
        "\u{a0}",
        "\u{2028}",
        "\u{3000}",
        "\u{ff0f}",
        "http:",
        "https://",
        "javascript:",
        ":",
        "evil.example",
        "%2F",
        "%5C",
        "%0A",
        "%",
        "%zz",
        "%ff",
        "+",
        "?",
        "#",
        "@",
        "&",
        "=",
        ".",
        "..",
        "é",
        "a",
        "sort",
        "dir",
        "next",
        "done",
        "subject",
        "asc",
        "desc",
        "store",
        "growth_28",
        "error",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat()),
    ]
}

/// A raw query string: any text, or `name=value` pairs of the pages'
/// parameter names (and others), some repeated, values tricky.
fn raw_query() -> impl Strategy<Value = Option<String>> {
    let name = prop_oneof![
        prop::sample::select(vec!["sort", "dir", "next", "ended", "done", "subject", "x", ""])
            .prop_map(String::from),
        tricky_text(),
    ];
    let pair = (name, tricky_text(), any::<bool>()).prop_map(|(name, value, encode)| {
        if encode {
            form_urlencoded::Serializer::new(String::new())
                .append_pair(&name, &value)
                .finish()
        } else {
            format!("{name}={value}")
        }
    });
    prop_oneof![
        Just(None),
        tricky_text().prop_map(Some),
        prop::collection::vec(pair, 0..6).prop_map(|pairs| Some(pairs.join("&"))),
    ]
}

/// The decoded names of a raw query, as the parsers see them.
fn names_of(raw: Option<&str>) -> Vec<String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(name, _)| name.into_owned())
        .collect()
}

/// A refusal is a 400 whose JSON body names one of `allowed` as the parameter.
fn assert_names_a_parameter(err: ApiError, allowed: &[&str]) -> Result<(), TestCaseError> {
    let (status, body) = err.answered();
    prop_assert_eq!(status.as_u16(), 400);
    prop_assert_eq!(&body["error"]["status"], 400);
    let parameter = body["error"]["parameter"].as_str().unwrap_or_default();
    prop_assert!(allowed.contains(&parameter), "{body}");
    prop_assert!(!body["error"]["message"].as_str().unwrap_or_default().is_empty());
    Ok(())
}

fn figures() -> impl Strategy<Value = Vec<Figures>> {
    let store = prop_oneof![
        any::<String>(),
        "-?[0-9]{1,3}(\\.[0-9])?",
        prop::sample::select(vec!["NaN", "inf", "-inf", "1e400", "S01", "10", "9"]).prop_map(String::from),
    ];
    let value = prop_oneof![
        Just(None),
        any::<f64>().prop_map(Some),
        prop::sample::select(vec![f64::NAN, -f64::NAN, f64::INFINITY, -0.0, 0.0]).prop_map(Some),
    ];
    prop::collection::vec(
        (store, prop::array::uniform7(value)).prop_map(|(store, values)| Figures { store, values }),
        0..12,
    )
}

proptest! {
    #![proptest_config(config())]

    /// `next` of the login page and form: whatever it is, the redirect
    /// after a login goes to a path of this site, as a browser resolves it,
    /// and is a valid `Location` header (no 500 after a login).
    #[test]
    fn local_path_is_always_a_path_on_this_site(next in prop::option::of(tricky_text())) {
        let path = local_path(next.as_deref());
        prop_assert!(Some(path.as_str()) == next.as_deref() || path == "/", "{path:?}");
        prop_assert!(path.starts_with('/'), "{path:?}");
        prop_assert!(!path.starts_with("//") && !path.starts_with("/\\"), "{path:?}");
        let base = Url::parse("http://site.example/login?next=x").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let target = base.join(&path).map_err(|e| TestCaseError::fail(format!("{path:?}: {e}")))?;
        prop_assert_eq!(target.scheme(), "http");
        prop_assert_eq!(target.host_str(), Some("site.example"), "{:?}", path);
        prop_assert!(axum::http::HeaderValue::try_from(path.clone()).is_ok(), "{path:?}");
    }

    /// The login page's query: `next` and `ended` once each at most.
    #[test]
    fn login_queries_give_values_or_a_400(raw in raw_query()) {
        let names = names_of(raw.as_deref());
        match query_values(raw.as_deref(), ["next", "ended"]) {
            Ok([next, ended]) => {
                for (name, value) in [("next", next), ("ended", ended)] {
                    let count = names.iter().filter(|n| *n == name).count();
                    prop_assert!(count <= 1, "{name} given {count} times, accepted");
                    prop_assert_eq!(value.is_some(), count == 1);
                }
            }
            Err(e) => assert_names_a_parameter(e, &["next", "ended"])?,
        }
    }

    /// The chain table's query sorts any stores (any names, any figures,
    /// NaN included) in the order asked, or is a 400 naming `sort` or `dir`.
    #[test]
    fn chain_sort_queries_sort_or_give_a_400(raw in raw_query(), rows in figures()) {
        let before: Vec<String> = rows.iter().map(|f| f.store.clone()).collect();
        match Sort::parse(raw.as_deref()).and_then(|sort| sorted(rows, &sort)) {
            Ok((rows, column, descending)) => {
                let mut stores: Vec<String> = rows.iter().map(|f| f.store.clone()).collect();
                let mut expected = before;
                stores.sort();
                expected.sort();
                prop_assert_eq!(stores, expected, "the same stores");
                for pair in rows.windows(2) {
                    let [a, b] = pair else { continue };
                    if column == 0 {
                        let order = super::chain::natural(&a.store, &b.store);
                        let order = if descending { order.reverse() } else { order };
                        prop_assert!(order.is_le(), "{:?} before {:?}", a.store, b.store);
                    } else {
                        match (a.values[column - 1], b.values[column - 1]) {
                            (Some(x), Some(y)) => {
                                let order = if descending { y.total_cmp(&x) } else { x.total_cmp(&y) };
                                prop_assert!(order.is_le(), "{x} before {y}");
                            }
                            (None, Some(_)) => prop_assert!(false, "a store without a value first"),
                            _ => {}
                        }
                    }
                }
            }
            Err(e) => assert_names_a_parameter(e, &["sort", "dir"])?,
        }
    }

    /// The admin page's `done` and `subject` say one of the fixed messages
    /// with a plain subject, or nothing; a repeated one is a 400.
    #[test]
    fn admin_done_queries_say_a_fixed_message_or_nothing(raw in raw_query()) {
        match Done::parse(raw.as_deref()) {
            Ok(done) => {
                if let Some(text) = done_message(&done) {
                    let subject = done.subject.as_deref().unwrap_or_default();
                    prop_assert!(!subject.is_empty() && subject.len() <= 64, "{subject:?}");
                    prop_assert!(
                        subject.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                        "{subject:?}"
                    );
                    prop_assert!(text.contains(subject));
                    prop_assert!(!text.contains(['<', '>', '&', '"', '\'']), "{text:?}");
                }
            }
            Err(e) => assert_names_a_parameter(e, &["done", "subject"])?,
        }
    }
}

#[test]
fn a_repeated_page_parameter_is_a_400_naming_it() {
    let err = Sort::parse(Some("sort=store&dir=asc&sort=error")).unwrap_err();
    let (status, body) = err.answered();
    assert_eq!(status.as_u16(), 400);
    assert_eq!(body["error"]["parameter"], "sort");
    assert_eq!(body["error"]["message"], "\"sort\" is given twice");
    let [next, ended] = query_values(Some("next=%2Fchain%3Fa%3D1&x=1&x=2"), ["next", "ended"]).unwrap();
    assert_eq!(next.as_deref(), Some("/chain?a=1"), "decoded; others ignored");
    assert_eq!(ended, None);
}
