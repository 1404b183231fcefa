//! The S3 lake's objects read from outside salescast (boto3 and pyarrow,
//! as Athena and a user would): keys, bytes, and the columns of a Parquet
//! file against what the template's Glue table declares.

use std::collections::BTreeMap;

use crate::pipelines::yaml;
use crate::util::{python, repo_file, s, s3_endpoint, tempdir};

/// The bucket and key prefix of an `s3://BUCKET/PREFIX` URI.
pub(crate) fn bucket_and_prefix(uri: &str) -> (String, String) {
    let rest = uri.strip_prefix("s3://").expect("an s3:// URI");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (bucket.to_string(), prefix.trim_end_matches('/').to_string())
}

/// Runs Python with boto3 on the local S3 server: `code` gets `s3` (a client)
/// and `args`.
pub(crate) fn s3_python(code: &str, args: &[&str]) -> String {
    let code = format!(
        "import sys, json, boto3\ns3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1')\nargs = sys.argv[2:]\n{code}"
    );
    let mut all = vec![s3_endpoint()];
    all.extend(args.iter().map(|a| a.to_string()));
    python(&code, &all.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Every key under an `s3://` lake, relative to it, sorted.
pub(crate) fn lake_keys(lake: &str) -> Vec<String> {
    let (bucket, prefix) = bucket_and_prefix(lake);
    let out = s3_python(
        "keys = []
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=args[0], Prefix=args[1]):
    keys += [o['Key'][len(args[1]):] for o in page.get('Contents', [])]
print(json.dumps(sorted(keys)))",
        &[
            &bucket,
            &if prefix.is_empty() {
                prefix
            } else {
                format!("{prefix}/")
            },
        ],
    );
    serde_json::from_str(&out).unwrap()
}

pub(crate) fn get_object(lake: &str, key: &str) -> Vec<u8> {
    let (bucket, prefix) = bucket_and_prefix(lake);
    let key = if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    };
    let hex = s3_python(
        "print(s3.get_object(Bucket=args[0], Key=args[1])['Body'].read().hex())",
        &[&bucket, &key],
    );
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The Parquet columns of `key` in `lake` against the columns (and partition
/// keys) the template declares for `table`, as Glue types.
pub(crate) fn assert_glue_columns(table: &str, lake: &str, key: &str) {
    let template = yaml(&repo_file("pipelines/salescast.yml"));
    let input = &template["Resources"][table]["Properties"]["TableInput"];
    let declared: BTreeMap<String, String> = input["StorageDescriptor"]["Columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().unwrap().to_string(),
                c["Type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let dir = tempdir();
    let file = dir.path().join("part.parquet");
    std::fs::write(&file, get_object(lake, key)).unwrap();
    let schema = python(
        "import sys, json, pyarrow.parquet as pq
print(json.dumps([[f.name, str(f.type)] for f in pq.read_schema(sys.argv[1])]))",
        &[s(&file)],
    );
    let written: BTreeMap<String, String> = serde_json::from_str::<Vec<(String, String)>>(&schema)
        .unwrap()
        .into_iter()
        .map(|(name, arrow)| {
            let glue = match arrow.as_str() {
                "string" | "large_string" | "string_view" => "string",
                "double" => "double",
                "float" => "float",
                "int32" => "int",
                "int64" => "bigint",
                "bool" => "boolean",
                "date32[day]" => "date",
                other => panic!("{key}: column {name} has an Arrow type ({other}) with no Glue type here"),
            };
            (name, glue.to_string())
        })
        .collect();
    assert_eq!(
        declared, written,
        "{table} (left) against the columns of {key} (right)"
    );
}
