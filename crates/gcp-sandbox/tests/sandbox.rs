//! The sandbox speaks Compute's wire format: lists, idempotent writes, operations, audit entries, history, latency.

use std::time::Duration;

use axum::http::StatusCode;
use gcp_sandbox::SandboxConfig;
use serde_json::{Value, json};

mod common;
use common::{rule, sandbox};

/// Sends a request and reads its JSON answer.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("a JSON answer")
}

#[tokio::test]
async fn list_pages_with_max_results_and_page_token() {
    let (_running, client, base) = sandbox(SandboxConfig::default()).await;
    for index in 0..7 {
        client
            .post(&base)
            .json(&rule(&format!("rule-{index}")))
            .send()
            .await
            .expect("insert");
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page: Value = client.get(format!("{base}?maxResults=3&pageToken={token}&$alt=json;enum-encoding=int&prettyPrint=false"))
            .send().await.expect("list").json().await.expect("json");
        pages += 1;
        assert_eq!(page["kind"], "compute#firewallList");
        names.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|item| item["name"].as_str().expect("name").to_string()),
        );
        match page["nextPageToken"].as_str() {
            Some(next) => token = next.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        (0..7)
            .map(|index| format!("rule-{index}"))
            .collect::<Vec<_>>()
    );
    let empty: Value = json_of(client.get(base.replace("p1", "empty"))).await;
    assert!(
        empty.get("items").is_none(),
        "empty lists omit items: {empty}"
    );
}

#[tokio::test]
async fn request_ids_make_writes_idempotent() {
    let (running, client, base) = sandbox(SandboxConfig::default()).await;
    client
        .post(&base)
        .json(&rule("r"))
        .send()
        .await
        .expect("insert");
    let url = format!("{base}/r?requestId=123e4567-e89b-12d3-a456-426614174000");
    let first: Value = json_of(client.patch(&url).json(&json!({"disabled": true}))).await;
    let second: Value = json_of(client.patch(&url).json(&json!({"disabled": true}))).await;
    assert_eq!(
        first["name"], second["name"],
        "the same operation answers a repeated requestId"
    );
    let patches = running
        .audit_entries()
        .iter()
        .filter(|entry| entry["protoPayload"]["methodName"] == "v1.compute.firewalls.patch")
        .count();
    assert_eq!(patches, 2, "one first and one last entry, not two pairs");
    let bad = client
        .patch(format!("{base}/r?requestId=nope"))
        .json(&json!({}))
        .send()
        .await
        .expect("patch");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

// Issue 18, item 4: an operation that ended DONE with an error had still changed the rule.
#[tokio::test]
async fn an_operation_that_fails_changes_nothing_and_its_last_entry_says_so() {
    let (running, client, base) = sandbox(SandboxConfig::default()).await;
    client
        .post(&base)
        .json(&rule("kept"))
        .send()
        .await
        .expect("insert");
    running.inject(gcp_sandbox::faults::Fault {
        method: Some("PATCH".into()),
        path_contains: "/firewalls/kept".into(),
        principal: None,
        times: 1,
        status: None,
        retry_after: None,
        delay_ms: None,
        operation_error: Some("Quota 'FIREWALLS' exceeded".into()),
        delete_first: false,
        reset: None,
    });
    let operation: Value = json_of(
        client
            .patch(format!("{base}/kept"))
            .json(&json!({"disabled": true})),
    )
    .await;
    running.settled().await;
    let done: Value = json_of(client.get(format!(
        "{}/compute/v1/projects/p1/global/operations/{}",
        running.base_url(),
        operation["name"].as_str().expect("name")
    )))
    .await;
    assert_eq!(done["status"], "DONE");
    assert!(done["error"]["errors"][0]["message"].is_string(), "{done}");
    let kept: Value = json_of(client.get(format!("{base}/kept"))).await;
    assert_eq!(
        kept["disabled"], false,
        "the failed operation did not apply"
    );
    let last = running
        .audit_entries()
        .into_iter()
        .rfind(|entry| entry["protoPayload"]["methodName"] == "v1.compute.firewalls.patch")
        .expect("the patch's last entry");
    assert_eq!(last["operation"]["last"], true);
    assert_eq!(last["severity"], "ERROR");
    assert_eq!(last["protoPayload"]["status"]["code"], 3);
}

// Issue 18, item 4: calls that fail validation or authorization are audit-logged with their status, as Google logs
// denied admin writes.
#[tokio::test]
async fn refused_writes_are_audit_logged_with_their_status() {
    let config = SandboxConfig {
        enforce_iam: true,
        ..SandboxConfig::default()
    };
    let (running, client, base) = sandbox(config).await;
    // Nobody holds a role in p1 (a project owned by owner@example.com): the write is denied.
    let denied = client
        .post(&base)
        .bearer_auth("intruder@example.com")
        .json(&rule("nope"))
        .send()
        .await
        .expect("insert");
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let body: Value = denied.json().await.expect("json");
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("compute.firewalls.create")),
        "{body}"
    );
    let anonymous = client.get(&base).send().await.expect("list");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // The owner's invalid insert is refused by validation, and logged too.
    let invalid = client
        .post(&base)
        .bearer_auth("owner@example.com")
        .json(&json!({"name": "Bad_Name", "allowed": [{"IPProtocol": "tcp"}]}))
        .send()
        .await
        .expect("insert");
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    running.settled().await;
    let entries = running.audit_entries();
    let codes: Vec<(i64, &str)> = entries
        .iter()
        .map(|entry| {
            (
                entry["protoPayload"]["status"]["code"]
                    .as_i64()
                    .unwrap_or(0),
                entry["severity"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(codes, vec![(7, "ERROR"), (3, "ERROR")], "{entries:?}");
    assert_eq!(
        entries[0]["protoPayload"]["authenticationInfo"]["principalEmail"],
        "intruder@example.com"
    );
}

#[tokio::test]
async fn operations_stay_running_until_their_delay_passes() {
    let config = SandboxConfig {
        operation_delay: Duration::from_millis(200),
        ..SandboxConfig::default()
    };
    let (running, client, base) = sandbox(config).await;
    let operation: Value = json_of(client.post(&base).json(&rule("slow"))).await;
    assert_eq!(operation["status"], "RUNNING");
    let url = format!(
        "{}/compute/v1/projects/p1/global/operations/{}",
        running.base_url(),
        operation["name"].as_str().expect("name")
    );
    let polled: Value = json_of(client.get(&url)).await;
    assert_eq!(polled["status"], "RUNNING");
    assert_eq!(
        running.audit_entries().len(),
        1,
        "only the first entry while running"
    );
    let waited: Value = json_of(client.post(format!("{url}/wait"))).await;
    assert_eq!(waited["status"], "DONE");
    assert_eq!(waited["progress"], 100);
    assert!(waited["endTime"].is_string());
    let last = running.audit_entries().last().cloned().expect("entries");
    assert_eq!(last["operation"]["last"], true);
}

#[tokio::test]
async fn patch_is_a_json_merge_patch() {
    let (_running, client, base) = sandbox(SandboxConfig::default()).await;
    client
        .post(&base)
        .json(
            &json!({"name": "m", "allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["1.2.3.4"],
        "targetTags": ["a"], "description": "keep"}),
        )
        .send()
        .await
        .expect("insert");
    client
        .patch(format!("{base}/m"))
        .json(&json!({"targetTags": null, "sourceRanges": ["5.6.7.8"]}))
        .send()
        .await
        .expect("patch");
    let rule: Value = json_of(client.get(format!("{base}/m"))).await;
    assert!(rule.get("targetTags").is_none());
    assert_eq!(rule["sourceRanges"], json!(["5.6.7.8"]));
    assert_eq!(rule["description"], "keep");
    let rename = client
        .patch(format!("{base}/m"))
        .json(&json!({"name": "other"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(rename.status(), StatusCode::BAD_REQUEST);
    let missing = client
        .patch(format!("{base}/nope"))
        .json(&json!({}))
        .send()
        .await
        .expect("patch");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let duplicate = client
        .post(&base)
        .json(&json!({"name": "m", "allowed": [{"IPProtocol": "tcp"}]}))
        .send()
        .await
        .expect("insert");
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn audit_entries_look_like_googles() {
    let mut config = SandboxConfig::default();
    config
        .principals
        .insert("tok".into(), "alice@example.com".into());
    let (running, client, base) = sandbox(config).await;
    let beta = base.replace("/v1/", "/beta/");
    client
        .post(&beta)
        .bearer_auth("tok")
        .json(&rule("b"))
        .send()
        .await
        .expect("insert");
    client
        .delete(format!("{base}/b"))
        .bearer_auth("unmapped-user")
        .send()
        .await
        .expect("delete");
    let entries = running.audit_entries();
    assert_eq!(entries.len(), 4);
    let first = &entries[0];
    assert_eq!(
        first["protoPayload"]["methodName"],
        "beta.compute.firewalls.insert"
    );
    assert_eq!(
        first["protoPayload"]["authenticationInfo"]["principalEmail"],
        "alice@example.com"
    );
    assert_eq!(
        first["protoPayload"]["request"]["alloweds"],
        json!([{"IPProtocol": "tcp", "ports": ["22"]}])
    );
    assert_eq!(
        first["protoPayload"]["request"]["@type"],
        "type.googleapis.com/compute.firewalls.insert"
    );
    assert_eq!(
        first["protoPayload"]["resourceName"],
        "projects/p1/global/firewalls/b"
    );
    assert_eq!(first["resource"]["type"], "gce_firewall_rule");
    assert!(first["resource"]["labels"]["firewall_rule_id"].is_string());
    assert_eq!(
        first["logName"],
        "projects/p1/logs/cloudaudit.googleapis.com%2Factivity"
    );
    assert_eq!(first["operation"]["first"], true);
    assert_eq!(first["severity"], "NOTICE");
    assert_eq!(entries[1]["operation"]["last"], true);
    assert_eq!(entries[1]["operation"]["id"], first["operation"]["id"]);
    let delete_first = &entries[2];
    assert_eq!(
        delete_first["protoPayload"]["methodName"],
        "v1.compute.firewalls.delete"
    );
    assert!(
        delete_first["protoPayload"].get("request").is_none(),
        "a delete's first entry has no request"
    );
    assert_eq!(
        delete_first["protoPayload"]["authenticationInfo"]["principalEmail"],
        "unmapped-user"
    );
    // Issue 18, item 7: the first entry reports the operation RUNNING, and Logging receives an entry after it was
    // written.
    assert_eq!(first["protoPayload"]["response"]["status"], "RUNNING");
    for entry in [&first, &delete_first] {
        assert!(
            entry["receiveTimestamp"].as_str() > entry["timestamp"].as_str(),
            "{entry}"
        );
    }
    let listed: Value = json_of(
        client
            .post(format!("{}/v2/entries:list", running.base_url()))
            .json(&json!({"resourceNames": ["projects/p1"]})),
    )
    .await;
    assert_eq!(listed["entries"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn seeds_are_validated_like_inserts() {
    let mut config = SandboxConfig::default();
    config.seed.firewalls.insert(
        "p1".into(),
        vec![json!({"name": "Bad Name", "allowed": [{"IPProtocol": "tcp"}]})],
    );
    let error = gcp_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("resource.name"), "{error}");
}

#[tokio::test]
async fn entries_list_filters_orders_and_pages() {
    let mut config = SandboxConfig::default();
    config
        .principals
        .insert("a".into(), "alice@example.com".into());
    let (running, client, base) = sandbox(config).await;
    client
        .post(&base)
        .bearer_auth("a")
        .json(&rule("one"))
        .send()
        .await
        .expect("insert");
    client
        .post(&base)
        .bearer_auth("b")
        .json(&rule("two"))
        .send()
        .await
        .expect("insert");
    client
        .post(base.replace("/p1/", "/p2/"))
        .bearer_auth("a")
        .json(&rule("three"))
        .send()
        .await
        .expect("insert");
    let list = |body: Value| {
        let client = client.clone();
        let url = format!("{}/v2/entries:list", running.base_url());
        async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("list")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let both = json!(["projects/p1", "projects/p2"]);
    let all = list(json!({"resourceNames": both})).await;
    assert_eq!(all["entries"].as_array().map(Vec::len), Some(6));
    // Issue 18, item 8: resourceNames scopes the result, and is required.
    let p2 = list(json!({"resourceNames": ["projects/p2"]})).await;
    assert_eq!(p2["entries"].as_array().map(Vec::len), Some(2));
    let unscoped = client
        .post(format!("{}/v2/entries:list", running.base_url()))
        .json(&json!({}))
        .send()
        .await
        .expect("list");
    assert_eq!(unscoped.status(), StatusCode::BAD_REQUEST);
    // The Logging query language: OR within AND, NOT, log_id, a new line as AND.
    let not_alice = list(json!({"resourceNames": both,
        "filter": "log_id(\"cloudaudit.googleapis.com/activity\")\nNOT protoPayload.authenticationInfo.principalEmail = \"alice@example.com\""})).await;
    assert_eq!(
        not_alice["entries"].as_array().map(Vec::len),
        Some(2),
        "{not_alice}"
    );
    let either = list(json!({"resourceNames": both,
        "filter": "protoPayload.resourceName : \"two\" OR protoPayload.resourceName : \"three\""}))
    .await;
    assert_eq!(
        either["entries"].as_array().map(Vec::len),
        Some(4),
        "{either}"
    );
    let alice = list(json!({"resourceNames": ["projects/p1"],
        "filter": "protoPayload.authenticationInfo.principalEmail = \"alice@example.com\" AND protoPayload.methodName=\"v1.compute.firewalls.insert\""})).await;
    assert_eq!(
        alice["entries"].as_array().map(Vec::len),
        Some(2),
        "{alice}"
    );
    let first =
        list(json!({"resourceNames": both, "pageSize": 4, "orderBy": "timestamp desc"})).await;
    assert_eq!(first["entries"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        first["entries"][0]["protoPayload"]["resourceName"],
        "projects/p2/global/firewalls/three"
    );
    let rest = list(
        json!({"resourceNames": both, "pageSize": 4, "orderBy": "timestamp desc", "pageToken": first["nextPageToken"]}),
    )
    .await;
    assert_eq!(rest["entries"].as_array().map(Vec::len), Some(2));
    assert!(rest.get("nextPageToken").is_none());
    let refused = client
        .post(format!("{}/v2/entries:list", running.base_url()))
        .json(&json!({"resourceNames": both, "filter": "severity >= (ERROR"}))
        .send()
        .await
        .expect("list");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_long_running_sandbox_remembers_a_bounded_history() {
    let (running, client, base) = sandbox(SandboxConfig {
        history: 4,
        ..SandboxConfig::default()
    })
    .await;
    let mut operations = Vec::new();
    for index in 0..5 {
        let request_id = format!("123e4567-e89b-12d3-a456-42661417400{index}");
        let operation = json_of(
            client
                .post(format!("{base}?requestId={request_id}"))
                .json(&rule(&format!("kept-{index}"))),
        )
        .await;
        operations.push(operation["name"].as_str().expect("a name").to_string());
    }
    // Two entries per insert: only the newest four are kept, oldest first.
    let names: Vec<Value> = running
        .audit_entries()
        .iter()
        .map(|entry| entry["protoPayload"]["resourceName"].clone())
        .collect();
    assert_eq!(
        names,
        ["kept-3", "kept-3", "kept-4", "kept-4"]
            .map(|name| json!(format!("projects/p1/global/firewalls/{name}")))
    );
    let status = |name: &str| {
        let url = format!(
            "{}/compute/v1/projects/p1/global/operations/{name}",
            running.base_url()
        );
        let client = client.clone();
        async move { client.get(url).send().await.expect("get").status() }
    };
    assert_eq!(status(&operations[0]).await, StatusCode::NOT_FOUND);
    assert_eq!(status(&operations[4]).await, StatusCode::OK);
    // A retry with a remembered requestId still answers its operation; the rules themselves are all kept.
    let retried = json_of(
        client
            .post(format!(
                "{base}?requestId=123e4567-e89b-12d3-a456-426614174004"
            ))
            .json(&rule("kept-4")),
    )
    .await;
    assert_eq!(retried["name"], operations[4].as_str());
    let listed: Value = json_of(client.get(&base)).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn a_running_operation_is_never_forgotten() {
    let (running, client, base) = sandbox(SandboxConfig {
        history: 1,
        operation_delay: Duration::from_millis(300),
        ..SandboxConfig::default()
    })
    .await;
    let first = json_of(client.post(&base).json(&rule("slow-0"))).await;
    json_of(client.post(&base).json(&rule("slow-1"))).await;
    // Two operations against a history of one, but the first still runs: it is kept, and completes.
    let url = format!(
        "{}/compute/v1/projects/p1/global/operations/{}/wait",
        running.base_url(),
        first["name"].as_str().expect("a name")
    );
    let waited = json_of(client.post(url)).await;
    assert_eq!(waited["status"], "DONE", "{waited}");
}

// Issue 24: Google's latency and per-project quotas, on demand.
#[tokio::test]
async fn latency_and_quotas_make_the_sandbox_behave_like_google_under_load() {
    let config = SandboxConfig {
        latency: gcp_sandbox::realism::Latency {
            base: Duration::from_millis(60),
            jitter: Duration::from_millis(10),
        },
        quota_per_project_per_s: Some(3),
        ..SandboxConfig::default()
    };
    let (_running, client, base) = sandbox(config).await;
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    // Eight requests of at least 60 ms span at most two seconds: at most six fit a quota of three a second.
    for _ in 0..8 {
        let response = client.get(&base).send().await.expect("list");
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let body: Value = response.json().await.expect("Google's error JSON");
            assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
            assert_eq!(body["error"]["errors"][0]["reason"], "rateLimitExceeded");
        }
    }
    assert!(
        started.elapsed() >= Duration::from_millis(480),
        "every answer waited"
    );
    let admitted = statuses.iter().filter(|status| **status == 200).count();
    assert!((3..=6).contains(&admitted), "{statuses:?}");
    assert_eq!(
        admitted + statuses.iter().filter(|status| **status == 429).count(),
        8
    );
}
