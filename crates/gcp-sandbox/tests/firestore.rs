//! Firestore's REST API in the sandbox, at the wire: value encoding, preconditions and their error bodies, commits
//! that are all or nothing, transactions that abort on a conflicting write, and structured queries.

use gcp_sandbox::SandboxConfig;
use serde_json::{Value, json};

const DATABASE: &str = "/v1/projects/fs/databases/(default)";

struct Api {
    _running: gcp_sandbox::Running,
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        let running = gcp_sandbox::start(
            SandboxConfig::default(),
            "127.0.0.1:0".parse().expect("addr"),
        )
        .await
        .expect("sandbox");
        Api {
            base: format!("{}{DATABASE}", running.base_url()),
            _running: running,
            client: gcp_sandbox::http_client(std::time::Duration::from_secs(5)),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth("t");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn commit(&self, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, "/documents:commit", Some(body))
            .await
    }
}

fn name(path: &str) -> String {
    format!("projects/fs/databases/(default)/documents/{path}")
}

#[tokio::test]
async fn preconditions_answer_googles_errors_and_a_failed_commit_changes_nothing() {
    let api = Api::start().await;
    let created = api
        .commit(json!({"writes": [{"update": {"name": name("claims/a"), "fields": {"n": {"integerValue": "1"}}},
            "currentDocument": {"exists": false}}]}))
        .await;
    assert_eq!(created.0, 200, "{created:?}");
    let update_time = created.1["writeResults"][0]["updateTime"]
        .as_str()
        .expect("time")
        .to_string();
    let again = api
        .commit(json!({"writes": [{"update": {"name": name("claims/a"), "fields": {}}, "currentDocument": {"exists": false}}]}))
        .await;
    assert_eq!(again.0, 409);
    assert_eq!(again.1["error"]["status"], "ALREADY_EXISTS");
    // Two writes, the second refused: the first does not land either.
    let mixed = api
        .commit(json!({"writes": [
            {"update": {"name": name("claims/b"), "fields": {}}},
            {"update": {"name": name("claims/a"), "fields": {}}, "currentDocument": {"updateTime": "2020-01-01T00:00:00Z"}},
        ]}))
        .await;
    assert_eq!(mixed.0, 400);
    assert_eq!(mixed.1["error"]["status"], "FAILED_PRECONDITION");
    assert_eq!(
        api.call(reqwest::Method::GET, "/documents/claims/b", None)
            .await
            .0,
        404
    );
    // The update time read is the precondition that holds; an increment keeps integers as strings.
    let bumped = api
        .commit(
            json!({"writes": [{"update": {"name": name("claims/a"), "fields": {}}, "updateMask": {},
            "currentDocument": {"updateTime": update_time},
            "updateTransforms": [{"fieldPath": "n", "increment": {"integerValue": "2"}},
                                 {"fieldPath": "at", "setToServerValue": "REQUEST_TIME"}]}]}),
        )
        .await;
    assert_eq!(bumped.0, 200, "{bumped:?}");
    assert_eq!(
        bumped.1["writeResults"][0]["transformResults"][0],
        json!({"integerValue": "3"})
    );
    let (_, read) = api
        .call(reqwest::Method::GET, "/documents/claims/a", None)
        .await;
    assert_eq!(read["fields"]["n"], json!({"integerValue": "3"}));
    assert!(
        read["fields"]["at"]["timestampValue"]
            .as_str()
            .is_some_and(|time| time.ends_with('Z'))
    );
    let missing = api
        .commit(json!({"writes": [{"delete": name("claims/none"), "currentDocument": {"exists": true}}]}))
        .await;
    assert_eq!(missing.0, 404);
    assert_eq!(missing.1["error"]["status"], "NOT_FOUND");
    let too_big = api
        .commit(json!({"writes": [{"update": {"name": name("claims/big"),
            "fields": {"blob": {"stringValue": "x".repeat(1_100_000)}}}}]}))
        .await;
    assert_eq!(too_big.0, 400, "documents are limited to 1 MiB");
}

#[tokio::test]
async fn a_transaction_aborts_when_what_it_read_changed_and_read_only_ones_cannot_write() {
    let api = Api::start().await;
    api.commit(json!({"writes": [{"update": {"name": name("leases/r"), "fields": {"holder": {"stringValue": "x"}}}}]}))
        .await;
    let (_, begun) = api
        .call(
            reqwest::Method::POST,
            "/documents:beginTransaction",
            Some(json!({})),
        )
        .await;
    let transaction = begun["transaction"].as_str().expect("an id").to_string();
    let (status, read) = api
        .call(
            reqwest::Method::POST,
            "/documents:batchGet",
            Some(json!({"documents": [name("leases/r"), name("leases/none")], "transaction": transaction})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        read[0]["found"].is_object() && read[1]["missing"].is_string(),
        "{read}"
    );
    // Someone else writes what the transaction read.
    api.commit(json!({"writes": [{"update": {"name": name("leases/r"), "fields": {"holder": {"stringValue": "y"}}}}]}))
        .await;
    let (status, body) = api
        .commit(
            json!({"transaction": transaction, "writes": [{"update": {"name": name("leases/r"),
            "fields": {"holder": {"stringValue": "z"}}}}]}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["status"], "ABORTED");
    let (_, read) = api
        .call(reqwest::Method::GET, "/documents/leases/r", None)
        .await;
    assert_eq!(read["fields"]["holder"]["stringValue"], "y");
    let (_, begun) = api
        .call(
            reqwest::Method::POST,
            "/documents:beginTransaction",
            Some(json!({"options": {"readOnly": {}}})),
        )
        .await;
    let (status, _) = api
        .commit(
            json!({"transaction": begun["transaction"], "writes": [{"delete": name("leases/r")}]}),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn structured_queries_filter_order_page_and_project() {
    let api = Api::start().await;
    let mut writes = Vec::new();
    for (id, state, due) in [
        ("a", "pending", 30),
        ("b", "delivered", 10),
        ("c", "pending", 20),
        ("d", "pending", 40),
    ] {
        writes.push(json!({"update": {"name": name(&format!("outbox/{id}")),
            "fields": {"state": {"stringValue": state}, "due": {"integerValue": due.to_string()}}}}));
    }
    writes.push(json!({"update": {"name": name("outbox/a/attempts/1"), "fields": {"due": {"integerValue": "1"}}}}));
    // Collections named before and after it, one starting with its name: a query reads its own collection only.
    for other in ["alerts/y", "outboxes/z"] {
        writes.push(json!({"update": {"name": name(other),
            "fields": {"state": {"stringValue": "pending"}, "due": {"integerValue": "5"}}}}));
    }
    api.commit(json!({"writes": writes})).await;
    let query = |structured: Value| {
        api.call(
            reqwest::Method::POST,
            "/documents:runQuery",
            Some(json!({"structuredQuery": structured})),
        )
    };
    let ids = |answer: &Value| -> Vec<String> {
        answer
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item["document"]["name"].as_str())
            .map(|name| name.rsplit('/').next().unwrap_or_default().to_string())
            .collect()
    };
    let (status, due) = query(json!({"from": [{"collectionId": "outbox"}],
        "where": {"compositeFilter": {"op": "AND", "filters": [
            {"fieldFilter": {"field": {"fieldPath": "state"}, "op": "EQUAL", "value": {"stringValue": "pending"}}},
            {"fieldFilter": {"field": {"fieldPath": "due"}, "op": "LESS_THAN", "value": {"integerValue": "35"}}}]}},
        "orderBy": [{"field": {"fieldPath": "due"}, "direction": "ASCENDING"}], "limit": 5}))
    .await;
    assert_eq!(status, 200, "{due}");
    assert_eq!(
        ids(&due),
        ["c", "a"],
        "neither the sub-collection's document nor another collection's is in outbox"
    );
    let (_, after) = query(json!({"from": [{"collectionId": "outbox"}],
        "orderBy": [{"field": {"fieldPath": "due"}, "direction": "DESCENDING"}],
        "startAt": {"values": [{"integerValue": "30"}], "before": false}, "limit": 1,
        "select": {"fields": [{"fieldPath": "state"}]}}))
    .await;
    assert_eq!(ids(&after), ["c"]);
    assert!(
        after[0]["document"]["fields"].get("due").is_none(),
        "{after}"
    );
    let (_, among) = query(json!({"from": [{"collectionId": "outbox"}],
        "where": {"fieldFilter": {"field": {"fieldPath": "due"}, "op": "IN",
            "value": {"arrayValue": {"values": [{"integerValue": "10"}, {"doubleValue": 40.0}]}}}}}))
    .await;
    assert_eq!(ids(&among), ["b", "d"]);
    let (_, everywhere) =
        query(json!({"from": [{"collectionId": "attempts", "allDescendants": true}]})).await;
    assert_eq!(ids(&everywhere), ["1"]);
    let (_, none) = query(json!({"from": [{"collectionId": "nothing"}]})).await;
    assert!(
        none[0]["readTime"].is_string() && none[0].get("document").is_none(),
        "{none}"
    );
    let (status, _) = query(json!({"from": [{"collectionId": "outbox"}],
        "where": {"fieldFilter": {"field": {"fieldPath": "due"}, "op": "SOMETIMES", "value": {"integerValue": "1"}}}}))
    .await;
    assert_eq!(status, 400);
}
