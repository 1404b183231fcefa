//! Property tests of `GET /v1/forecasts`' query parsing
//! ([`parse_stored_query`]): any raw query string gives one series (exactly
//! the model's keys, a range whose `from` is not after `to`) or a JSON 400
//! naming the parameter at fault, never a panic; a well-formed query reads
//! back what was written, and one planted fault is named.

use proptest::prelude::*;

use super::*;

/// 256 cases a property (proptest's default; `PROPTEST_CASES` sets more for
/// a deeper search); failures are not written into the source tree (a case
/// found failing is kept as a named test instead).
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The model's series keys: one to three distinct column names.
fn series_keys() -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(vec!["store", "item", "region", "sku", "from_store"], 1..=3)
        .prop_map(|keys| keys.into_iter().map(String::from).collect())
}

/// Text that matters to a query or a date, or any text.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "2015-07-31",
        "2015-02-29",
        "2016-02-29",
        "0000-01-01",
        "+262143-12-31",
        "99999-01-01",
        "-1",
        "1",
        "%",
        "%zz",
        "%ff",
        "%2D",
        "+",
        "=",
        "&",
        "/",
        " ",
        "\u{0}",
        "é",
        "store",
        "item",
        "from",
        "to",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(piece, 0..5).prop_map(|pieces| pieces.concat()),
    ]
}

/// Any raw query, or pairs of the parameter names (some repeated, some
/// unknown) with tricky values, encoded or as typed.
fn raw_query() -> impl Strategy<Value = Option<String>> {
    let name = prop_oneof![
        prop::sample::select(vec!["store", "item", "region", "from", "to", "x", "", "Store"])
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

fn a_date() -> impl Strategy<Value = NaiveDate> {
    (-100_000i32..100_000)
        .prop_map(|days| NaiveDate::from_epoch_days(16_000 + days).unwrap_or(NaiveDate::MIN))
}

/// The 400 and its JSON body; returns the parameter it names.
fn refusal(err: ApiError) -> Result<String, TestCaseError> {
    let (status, body) = err.answered();
    prop_assert_eq!(status.as_u16(), 400, "{}", body);
    prop_assert_eq!(&body["error"]["status"], 400);
    prop_assert!(!body["error"]["message"].as_str().unwrap_or_default().is_empty());
    body["error"]["parameter"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| TestCaseError::fail(format!("no parameter named: {body}")))
}

/// One fault planted in a well-formed query, and the parameter it must name.
#[derive(Debug, Clone)]
enum Fault {
    Repeated(usize),
    Unknown(String),
    BadDate(bool),
    Reversed,
    Missing(usize),
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_query_gives_a_series_or_a_400_naming_a_parameter(raw in raw_query(), keys in series_keys()) {
        let names: Vec<String> = form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes())
            .map(|(n, _)| n.into_owned())
            .collect();
        match parse_stored_query(raw.as_deref(), &keys) {
            Ok(query) => {
                prop_assert_eq!(query.keys.keys().collect::<Vec<_>>(), {
                    let mut sorted: Vec<&String> = keys.iter().collect();
                    sorted.sort();
                    sorted
                });
                let parts: Vec<&str> = keys.iter().map(|k| query.keys[k].as_str()).collect();
                prop_assert_eq!(query.name, parts.join("/"));
                if let (Some(from), Some(to)) = (query.from, query.to) {
                    prop_assert!(from <= to);
                }
                for name in &names {
                    prop_assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{} once", name);
                }
            }
            Err(e) => {
                let parameter = refusal(e)?;
                prop_assert!(
                    names.contains(&parameter) || keys.contains(&parameter),
                    "{parameter:?} is neither given nor a series key"
                );
            }
        }
    }

    /// Well-formed queries (any values, any order, encoded) read back as
    /// written; one planted fault is named by its parameter.
    #[test]
    fn well_formed_queries_read_back_and_a_planted_fault_is_named(
        keys in series_keys(),
        values in prop::collection::vec(any::<String>(), 3),
        range in (prop::option::of(a_date()), prop::option::of(a_date())),
        order in any::<prop::sample::Index>(),
        fault in prop::option::of(prop_oneof![
            (0usize..3).prop_map(Fault::Repeated),
            "[a-z_]{1,8}".prop_map(Fault::Unknown),
            any::<bool>().prop_map(Fault::BadDate),
            Just(Fault::Reversed),
            (0usize..3).prop_map(Fault::Missing),
        ]),
    ) {
        let (from, to) = match range {
            (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
            other => other,
        };
        let mut pairs: Vec<(String, String)> =
            keys.iter().zip(&values).map(|(k, v)| (k.clone(), v.clone())).collect();
        for (name, day) in [("from", from), ("to", to)] {
            if let Some(day) = day {
                pairs.push((name.into(), day.format("%Y-%m-%d").to_string()));
            }
        }
        let expected: Option<String> = match &fault {
            None => None,
            Some(Fault::Repeated(i)) => {
                let (k, v) = pairs[i % keys.len()].clone();
                pairs.push((k.clone(), v));
                Some(k)
            }
            Some(Fault::Unknown(name)) if keys.contains(name) || name == "from" || name == "to" => None,
            Some(Fault::Unknown(name)) => {
                pairs.push((name.clone(), "1".into()));
                Some(name.clone())
            }
            Some(Fault::BadDate(on_from)) => {
                let name = if *on_from { "from" } else { "to" };
                pairs.retain(|(n, _)| n != name);
                pairs.push((name.into(), "2015-02-29".into()));
                Some(name.into())
            }
            Some(Fault::Reversed) => {
                pairs.retain(|(n, _)| n != "from" && n != "to");
                pairs.push(("from".into(), "2015-08-01".into()));
                pairs.push(("to".into(), "2015-07-31".into()));
                Some("from".into())
            }
            Some(Fault::Missing(i)) => {
                let key = keys[i % keys.len()].clone();
                pairs.retain(|(n, _)| *n != key);
                Some(key)
            }
        };
        let shift = order.index(pairs.len().max(1));
        let len = pairs.len();
        pairs.rotate_left(shift.min(len));
        let raw = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let parsed = parse_stored_query(Some(&raw), &keys);
        match (expected, parsed) {
            (None, Ok(query)) => {
                for (key, value) in keys.iter().zip(&values) {
                    prop_assert_eq!(&query.keys[key], value);
                }
                prop_assert_eq!(query.keys.len(), keys.len());
                prop_assert_eq!((query.from, query.to), (from, to));
            }
            (Some(name), Err(e)) => prop_assert_eq!(refusal(e)?, name),
            (expected, Ok(query)) => prop_assert!(false, "{raw:?}: expected a 400 naming {expected:?}, got {query:?}"),
            (None, Err(e)) => prop_assert!(false, "{raw:?}: refused {e:?}"),
        }
    }
}

#[test]
fn no_query_names_the_missing_series_key() {
    let keys = vec!["store".to_string(), "item".to_string()];
    let (status, body) = parse_stored_query(None, &keys).unwrap_err().answered();
    assert_eq!(status.as_u16(), 400);
    assert_eq!(body["error"]["parameter"], "store");
    let query = parse_stored_query(Some("item=a%2Fb&store=S+1&to=2015-07-31"), &keys).unwrap();
    assert_eq!(query.name, "S 1/a/b", "decoded, in the keys' order");
    assert_eq!(query.from, None);
}
