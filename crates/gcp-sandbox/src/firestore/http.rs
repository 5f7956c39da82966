//! Firestore's HTTP surface in the sandbox: the database-level verbs (`documents:commit`, `:batchGet`,
//! `:beginTransaction`, `:rollback`, `:runQuery`) and everything under `…/documents/` (a document, a collection, a
//! parent's `:runQuery`), with Google's query-string parameters (`updateMask.fieldPaths`, `currentDocument.*`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Firestore, database_name, document_name, parse_body, value};
use crate::Shared;
use crate::error::ApiError;

/// The query string's repeated parameters (`updateMask.fieldPaths=a&updateMask.fieldPaths=b`).
fn parameters(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| percent_decode(&text.replace('+', " "));
            (decode(key), decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[index + 1..index + 3], 16)
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The transaction a read runs in: `transaction`, or one `newTransaction` begins (returned to the caller).
fn read_transaction(
    state: &mut Firestore,
    request: &Value,
) -> Result<(Option<String>, bool), ApiError> {
    if let Some(id) = request["transaction"].as_str() {
        state.transaction(id)?;
        return Ok((Some(id.to_string()), false));
    }
    if let Some(options) = request.get("newTransaction") {
        return Ok((Some(state.begin(options)), true));
    }
    Ok((None, false))
}

/// `POST …/databases/D/documents:commit` (and `:batchGet`, `:beginTransaction`, `:rollback`, `:runQuery`).
pub(super) async fn database_verb(
    State(shared): State<Arc<Shared>>,
    Path((project, database, verb)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let database = database_name(&project, &database);
    let request = parse_body(&body)?;
    let mut state = shared.firestore.lock().expect("firestore lock poisoned");
    match verb.as_str() {
        "documents:commit" => {
            let writes = request["writes"].as_array().cloned().unwrap_or_default();
            state
                .commit(&database, &writes, request["transaction"].as_str())
                .map(Json)
        }
        "documents:beginTransaction" => {
            let id = state.begin(&request["options"]);
            Ok(Json(json!({"transaction": id})))
        }
        "documents:rollback" => {
            let id = request["transaction"].as_str().unwrap_or_default();
            state.transaction(id)?;
            state.transactions.remove(id);
            Ok(Json(json!({})))
        }
        "documents:batchGet" => {
            let (transaction, began) = read_transaction(&mut state, &request)?;
            let read_time = value::format_time(state.now());
            let mask: Option<Vec<String>> = request["mask"]["fieldPaths"].as_array().map(|paths| {
                paths
                    .iter()
                    .filter_map(|path| path.as_str().map(str::to_string))
                    .collect()
            });
            let mut answers = Vec::new();
            for name in request["documents"].as_array().into_iter().flatten() {
                let name = document_name(&database, name.as_str().unwrap_or_default())?.to_string();
                let mut answer = match state.read(&name, transaction.as_deref())? {
                    Some(document) => {
                        json!({"found": Firestore::view(&name, document, mask.as_deref()), "readTime": read_time})
                    }
                    None => json!({"missing": name, "readTime": read_time}),
                };
                if began && answers.is_empty() {
                    answer["transaction"] = json!(transaction);
                }
                answers.push(answer);
            }
            Ok(Json(Value::Array(answers)))
        }
        "documents:runQuery" => run_query(&mut state, &format!("{database}/documents"), &request),
        _ => Err(ApiError::esf(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Method {verb} not found."),
        )),
    }
}

fn run_query(
    state: &mut Firestore,
    parent: &str,
    request: &Value,
) -> Result<Json<Value>, ApiError> {
    let (transaction, began) = read_transaction(state, request)?;
    let found = state.run_query(parent, &request["structuredQuery"], transaction.as_deref())?;
    let read_time = value::format_time(state.now());
    let mut answers: Vec<Value> = found
        .into_iter()
        .map(|document| json!({"document": document, "readTime": read_time}))
        .collect();
    if answers.is_empty() {
        answers.push(json!({"readTime": read_time}));
    }
    if began {
        answers[0]["transaction"] = json!(transaction);
    }
    Ok(Json(Value::Array(answers)))
}

/// Everything under `…/documents/`: a document (`GET`, `PATCH`, `DELETE`), a collection (`GET` lists, `POST`
/// creates), or a parent document's `:runQuery`.
pub(super) async fn document_path(
    State(shared): State<Arc<Shared>>,
    Path((project, database, path)): Path<(String, String, String)>,
    method: Method,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let database = database_name(&project, &database);
    let parameters = parameters(raw.as_deref());
    let first = |key: &str| {
        parameters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let all = |key: &str| -> Vec<String> {
        parameters
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut state = shared.firestore.lock().expect("firestore lock poisoned");
    if let Some(parent) = path.strip_suffix(":runQuery") {
        let parent = format!("{database}/documents/{parent}");
        document_name(&database, &parent)?;
        return run_query(&mut state, &parent, &parse_body(&body)?);
    }
    let name = format!("{database}/documents/{path}");
    let is_collection = path.split('/').count() % 2 == 1;
    match (method, is_collection) {
        (Method::GET, false) => {
            document_name(&database, &name)?;
            let transaction = first("transaction");
            let mask = all("mask.fieldPaths");
            let mask = (!mask.is_empty()).then_some(mask);
            match state.read(&name, transaction.as_deref())? {
                Some(document) => Ok(Json(Firestore::view(&name, document, mask.as_deref()))),
                None => Err(ApiError::esf(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("Document \"{name}\" not found."),
                )),
            }
        }
        (Method::GET, true) => {
            let prefix = format!("{name}/");
            let documents: Vec<Value> = state
                .documents
                .range(prefix.clone()..)
                .take_while(|(found, _)| found.starts_with(&prefix))
                .filter(|(found, _)| !found[prefix.len()..].contains('/'))
                .map(|(found, document)| Firestore::view(found, document, None))
                .collect();
            let mut query: HashMap<String, String> = HashMap::new();
            for key in ["pageSize", "pageToken"] {
                if let Some(found) = first(key) {
                    query.insert(key.to_string(), found);
                }
            }
            let page = crate::paged(
                &shared,
                documents,
                "documents",
                &query,
                crate::Paging::FIRESTORE,
            )?;
            Ok(Json(page))
        }
        (Method::POST, true) => {
            let mut document = parse_body(&body)?;
            let id = first("documentId").unwrap_or_else(|| {
                let next = state.now();
                format!("{:020x}", next.unsigned_abs())
            });
            let full = document_name(&database, &format!("{name}/{id}"))?.to_string();
            document["name"] = json!(full);
            let write = json!({"update": document, "currentDocument": {"exists": false}});
            state.commit(&database, &[write], None)?;
            let stored = &state.documents[&full];
            Ok(Json(Firestore::view(&full, stored, None)))
        }
        (Method::PATCH, false) => {
            document_name(&database, &name)?;
            let mut document = parse_body(&body)?;
            document["name"] = json!(name);
            let mut write = json!({"update": document});
            let mask = all("updateMask.fieldPaths");
            if !mask.is_empty() {
                write["updateMask"] = json!({"fieldPaths": mask});
            }
            if let Some(exists) = first("currentDocument.exists") {
                write["currentDocument"] = json!({"exists": exists == "true"});
            }
            if let Some(update_time) = first("currentDocument.updateTime") {
                write["currentDocument"] = json!({"updateTime": update_time});
            }
            state.commit(&database, &[write], None)?;
            let stored = &state.documents[&name];
            Ok(Json(Firestore::view(&name, stored, None)))
        }
        (Method::DELETE, false) => {
            document_name(&database, &name)?;
            let mut write = json!({"delete": name});
            if let Some(exists) = first("currentDocument.exists") {
                write["currentDocument"] = json!({"exists": exists == "true"});
            }
            if let Some(update_time) = first("currentDocument.updateTime") {
                write["currentDocument"] = json!({"updateTime": update_time});
            }
            state.commit(&database, &[write], None)?;
            Ok(Json(json!({})))
        }
        _ => Err(ApiError::esf(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("No method for {name}."),
        )),
    }
}
