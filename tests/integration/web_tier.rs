//! The web tier's task role (`pipelines/web.yml`, `TaskPolicy`) against what
//! `salescast serve` really sends: serve runs on the S3 test server (startup,
//! GET and POST forecasts, the dashboard's pages and a rollback from its
//! admin page, polls and rescans), its requests are read off the
//! server's log, and each must be granted; each object grant must be used. Listing is granted on whole buckets on purpose (see the template:
//! 404 rather than 403 for missing keys), so only its use is checked.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::daily_pipeline::{Grant, RequestLog, fresh_s3_lake, plan_two_weeks_later, top_folder};
use crate::lake_objects::bucket_and_prefix;
use crate::pipelines::yaml;
use crate::retrain::{Backend, Place};
use crate::serve::{ADMIN_PASSWORD, add_admin};
use crate::server_util::{Server, request};
use crate::util::{LINEAR, repo_file, s};

/// The S3 grants of the task policy: (bucket, action, folder), with `*` for
/// a whole bucket.
fn task_grants(template: &Value) -> BTreeSet<Grant> {
    let statements = template["Resources"]["TaskPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let list = |v: &Value| match v {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    let mut grants = BTreeSet::new();
    for statement in statements {
        assert_eq!(statement["Effect"], "Allow");
        let actions: Vec<String> = list(&statement["Action"])
            .iter()
            .filter_map(|a| a.as_str().filter(|a| a.starts_with("s3:")).map(str::to_string))
            .collect();
        for resource in list(&statement["Resource"]) {
            let Some(arn) = resource["Sub"].as_str() else {
                continue;
            };
            let arn = arn
                .replace("arn:${AWS::Partition}:s3:::", "")
                .replace("${RegistryPrefix}", "registry");
            let (bucket, path) = arn.split_once('/').unwrap_or((&arn, ""));
            let bucket = match bucket {
                "${LakeBucketName}" => "lake",
                "${RegistryBucketName}" => "registry",
                other => panic!("a grant on an unexpected bucket {other}"),
            };
            assert!(
                statement["Condition"].is_null(),
                "S3 grants here have no conditions: {statement}"
            );
            let folder = if path.is_empty() {
                "*".to_string()
            } else {
                top_folder(path)
            };
            for action in &actions {
                grants.insert((bucket.to_string(), action.clone(), folder.clone()));
            }
        }
    }
    grants
}

#[test]
fn the_web_task_role_grants_what_serve_uses() {
    let lake = fresh_s3_lake();
    let place = Place {
        lake: lake.clone(),
        ..Place::new(Backend::S3)
    };
    let config = place.config(&format!(
        "{LINEAR}[serve]\npoll_seconds = 0.2\nrescan_seconds = 0.5\n"
    ));
    // A plan for the days after the data day (its week of two weeks before).
    let plan = place.dir.path().join("plan.csv");
    plan_two_weeks_later(&plan, "2015-07-18", "2015-07-24");
    place.run(&config, &["ingest", "--plan", s(&plan)]).expect_code(0);
    // Two versions, so the admin page has one to roll back to.
    place.retrain(&config, "2015-07-24").expect_code(0);
    place.retrain(&config, "2015-07-31").expect_code(0);
    place
        .run(&config, &["predict", "--date", "2015-07-31"])
        .expect_code(0);

    add_admin(&place);

    let log = RequestLog::start();
    let server = Server::start(&place.cli(&config), place.dir.path());
    server.wait_for("/readyz", Duration::from_secs(120), |status, _| status == 200);
    // A failed login counts in the account; a login writes the audit log.
    assert_eq!(
        server.login("root", "not the password at all").unwrap_err().0,
        401
    );
    server.login("root", ADMIN_PASSWORD).unwrap();
    assert_eq!(server.get_json("/v1/forecasts?Store=102").0, 200);
    let body =
        r#"{"series": [{"Store": "102"}], "plan": [{"Store": "102", "Date": "2015-08-04", "Promo": 1}]}"#;
    assert_eq!(server.call("POST", "/v1/forecasts", Some(body)).0, 200);
    // The dashboard's pages, and a rollback from the admin page.
    let root = server.login("root", ADMIN_PASSWORD).unwrap();
    let headers = vec![
        ("Cookie".to_string(), format!("salescast_session={}", root.cookie)),
        ("X-CSRF-Token".to_string(), root.csrf.clone()),
        (
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    for page in ["/stores/102", "/chain", "/model", "/admin"] {
        assert_eq!(
            request(&server.addr, "GET", page, None, &headers).status,
            200,
            "{page}"
        );
    }
    let versions = place.registry_cmd(&["models", "list"]).expect_code(0).json();
    let champion = versions["champion"].as_str().unwrap().to_string();
    let other = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["version"].as_str())
        .find(|v| *v != champion)
        .expect("two versions")
        .to_string();
    let form = format!("to={other}&reason=web+tier+check");
    let reply = request(&server.addr, "POST", "/admin/rollback", Some(&form), &headers);
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(place.decisions().last().unwrap()["actor"], "root");
    std::thread::sleep(Duration::from_secs(2)); // polls and rescans
    assert!(server.terminate().success());

    let buckets = BTreeMap::from([
        (bucket_and_prefix(&lake).0, "lake"),
        (bucket_and_prefix(&place.registry).0, "registry"),
    ]);
    let used = log.used(&buckets);
    let granted = task_grants(&yaml(&repo_file("pipelines/web.yml")));
    let covered =
        |g: &Grant| granted.contains(g) || granted.contains(&(g.0.clone(), g.1.clone(), "*".to_string()));
    let not_granted: Vec<&Grant> = used.iter().filter(|g| !covered(g)).collect();
    assert!(
        not_granted.is_empty(),
        "serve sent requests the task role does not grant: {not_granted:?}"
    );
    let unused: Vec<&Grant> = granted
        .iter()
        .filter(|g| g.2 != "*" && !used.contains(g))
        .collect();
    assert!(
        unused.is_empty(),
        "granted but never used by serve: {unused:?}\nused: {used:?}"
    );
    assert!(
        granted.iter().all(|g| g.1 == "s3:GetObject"
            || (g.1 == "s3:ListBucket" && g.2 == "*")
            || (g.1 == "s3:PutObject" && g.0 == "registry")),
        "the task role only reads, but for accounts, the audit log and rollbacks: {granted:?}"
    );
}
