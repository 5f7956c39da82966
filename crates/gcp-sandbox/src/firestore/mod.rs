//! Firestore's REST API (v1) as Google serves it, for every project and database: documents `get`, `list`,
//! `createDocument`, `patch` (with `updateMask` and `currentDocument` preconditions) and `delete`; `commit` of
//! updates, deletes and field transforms, all or nothing; `beginTransaction` / `rollback`, with transactions that
//! detect a conflicting write and answer `ABORTED`; `batchGet` and `runQuery` (streamed as a JSON array).

mod http;
mod query;
mod value;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{any, post};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::error::ApiError;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/v1/projects/{project}/databases/{database}/{verb}",
            post(http::database_verb),
        )
        .route(
            "/v1/projects/{project}/databases/{database}/documents/{*path}",
            any(http::document_path),
        )
}

struct Document {
    fields: Map<String, Value>,
    create: i64,
    update: i64,
}

struct Transaction {
    /// Documents read in the transaction, with the update time seen (`None`: it did not exist).
    reads: HashMap<String, Option<i64>>,
    read_only: bool,
}

/// Every database's documents by full name, and the open transactions.
#[derive(Default)]
pub(crate) struct Firestore {
    documents: BTreeMap<String, Document>,
    transactions: HashMap<String, Transaction>,
    next_transaction: u64,
    /// The last time handed out, in microseconds: every commit gets a later one.
    clock: i64,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn aborted() -> ApiError {
    ApiError::esf(
        StatusCode::CONFLICT,
        "ABORTED",
        "Transaction lock timeout. Too much contention on these documents. Please try again.",
    )
}

fn database_name(project: &str, database: &str) -> String {
    format!("projects/{project}/databases/{database}")
}

/// Checks a document name under `database`: `…/documents/` and an even number of non-empty segments.
fn document_name<'a>(database: &str, name: &'a str) -> Result<&'a str, ApiError> {
    let prefix = format!("{database}/documents/");
    let path = name.strip_prefix(&prefix).ok_or_else(|| {
        invalid(format!(
            "Document name \"{name}\" lacks \"{database}/documents/\"."
        ))
    })?;
    let segments: Vec<&str> = path.split('/').collect();
    if !segments.len().is_multiple_of(2)
        || segments
            .iter()
            .any(|segment| segment.is_empty() || *segment == "." || *segment == "..")
        || name.len() > 6 * 1024
    {
        return Err(invalid(format!(
            "Document name \"{name}\" has invalid trailing path."
        )));
    }
    Ok(name)
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))
}

impl Firestore {
    fn now(&mut self) -> i64 {
        let wall = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
        self.clock = wall.max(self.clock + 1);
        self.clock
    }

    fn view(name: &str, document: &Document, mask: Option<&[String]>) -> Value {
        let fields = match mask {
            Some(paths) => {
                let mut kept = Map::new();
                for path in paths {
                    if let Ok(segments) = value::field_path(path)
                        && let Some(found) = value::get(&document.fields, &segments)
                    {
                        value::set(&mut kept, &segments, found.clone());
                    }
                }
                kept
            }
            None => document.fields.clone(),
        };
        json!({"name": name, "fields": fields, "createTime": value::format_time(document.create),
            "updateTime": value::format_time(document.update)})
    }

    fn begin(&mut self, options: &Value) -> String {
        self.next_transaction += 1;
        let id = base64::engine::general_purpose::STANDARD
            .encode(format!("sandbox-transaction-{}", self.next_transaction));
        self.transactions.insert(
            id.clone(),
            Transaction {
                reads: HashMap::new(),
                read_only: options.get("readOnly").is_some(),
            },
        );
        id
    }

    fn transaction(&mut self, id: &str) -> Result<&mut Transaction, ApiError> {
        self.transactions
            .get_mut(id)
            .ok_or_else(|| invalid("The referenced transaction has expired or is no longer valid."))
    }

    /// A read, recorded in `transaction` when there is one.
    fn read(
        &mut self,
        name: &str,
        transaction: Option<&str>,
    ) -> Result<Option<&Document>, ApiError> {
        let seen = self.documents.get(name).map(|document| document.update);
        if let Some(id) = transaction {
            self.transaction(id)?
                .reads
                .entry(name.to_string())
                .or_insert(seen);
        }
        Ok(self.documents.get(name))
    }

    /// Applies `writes` all or nothing; with a transaction, first checks that nothing it read has changed since.
    fn commit(
        &mut self,
        database: &str,
        writes: &[Value],
        transaction: Option<&str>,
    ) -> Result<Value, ApiError> {
        if let Some(id) = transaction {
            let open = self.transaction(id)?;
            if open.read_only && !writes.is_empty() {
                return Err(invalid(
                    "Cannot modify entities in a read-only transaction.",
                ));
            }
            let reads: Vec<(String, Option<i64>)> =
                open.reads.iter().map(|(k, v)| (k.clone(), *v)).collect();
            self.transactions.remove(id);
            for (name, seen) in reads {
                if self.documents.get(&name).map(|document| document.update) != seen {
                    return Err(aborted());
                }
            }
        }
        let now = self.now();
        // Every write is checked and computed on a copy; only a commit that passes entirely is kept.
        let mut changed: BTreeMap<String, Option<Document>> = BTreeMap::new();
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            results.push(self.one_write(database, write, now, &mut changed)?);
        }
        for (name, document) in changed {
            match document {
                Some(document) => self.documents.insert(name, document),
                None => self.documents.remove(&name),
            };
        }
        Ok(json!({"writeResults": results, "commitTime": value::format_time(now)}))
    }

    fn current<'a>(
        &'a self,
        name: &str,
        changed: &'a BTreeMap<String, Option<Document>>,
    ) -> Option<&'a Document> {
        match changed.get(name) {
            Some(document) => document.as_ref(),
            None => self.documents.get(name),
        }
    }

    fn one_write(
        &self,
        database: &str,
        write: &Value,
        now: i64,
        changed: &mut BTreeMap<String, Option<Document>>,
    ) -> Result<Value, ApiError> {
        let (name, update) = if let Some(update) = write.get("update") {
            let name = update["name"]
                .as_str()
                .ok_or_else(|| invalid("A write's document needs a name."))?;
            (document_name(database, name)?.to_string(), Some(update))
        } else if let Some(name) = write["delete"].as_str() {
            (document_name(database, name)?.to_string(), None)
        } else if let Some(name) = write["transform"]["document"].as_str() {
            (document_name(database, name)?.to_string(), None)
        } else {
            return Err(invalid(
                "A write must be an update, a delete or a transform.",
            ));
        };
        let existing = self.current(&name, changed);
        if let Some(precondition) = write.get("currentDocument") {
            if let Some(exists) = precondition["exists"].as_bool() {
                match (exists, existing.is_some()) {
                    (false, true) => {
                        return Err(ApiError::esf(
                            StatusCode::CONFLICT,
                            "ALREADY_EXISTS",
                            format!("Document already exists: {name}"),
                        ));
                    }
                    (true, false) => {
                        return Err(ApiError::esf(
                            StatusCode::NOT_FOUND,
                            "NOT_FOUND",
                            format!("No document to update: {name}"),
                        ));
                    }
                    _ => {}
                }
            }
            if let Some(wanted) = precondition["updateTime"].as_str() {
                let wanted_micros = value::timestamp(wanted).map(|nanos| (nanos / 1000) as i64);
                if existing.map(|document| document.update) != wanted_micros {
                    return Err(ApiError::esf(
                        StatusCode::BAD_REQUEST,
                        "FAILED_PRECONDITION",
                        format!(
                            "the stored version ({}) does not match the required base version ({wanted})",
                            existing
                                .map(|document| value::format_time(document.update))
                                .unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        if write.get("delete").is_some() {
            changed.insert(name.clone(), None);
            return Ok(json!({"updateTime": value::format_time(now)}));
        }
        let mut fields = existing
            .map(|document| document.fields.clone())
            .unwrap_or_default();
        if let Some(update) = update {
            let given = update["fields"].as_object().cloned().unwrap_or_default();
            for field in given.values() {
                value::check(field).map_err(invalid)?;
            }
            // A mask with no paths arrives as `{}` (JSON leaves out an empty list): it still is a mask.
            match write.get("updateMask").filter(|mask| mask.is_object()) {
                Some(mask) => {
                    for path in mask["fieldPaths"].as_array().into_iter().flatten() {
                        let segments = value::field_path(path.as_str().unwrap_or_default())
                            .map_err(invalid)?;
                        match value::get(&given, &segments) {
                            Some(found) => value::set(&mut fields, &segments, found.clone()),
                            None => value::remove(&mut fields, &segments),
                        }
                    }
                }
                None => fields = given,
            }
        }
        let transforms = write
            .get("updateTransforms")
            .or_else(|| write["transform"].get("fieldTransforms"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut transform_results = Vec::with_capacity(transforms.len());
        for transform in &transforms {
            let path = transform["fieldPath"].as_str().unwrap_or_default();
            let segments = value::field_path(path).map_err(invalid)?;
            let result = value::transform(value::get(&fields, &segments), transform, now)
                .map_err(invalid)?;
            value::set(&mut fields, &segments, result.clone());
            transform_results.push(result);
        }
        let encoded = serde_json::to_vec(&fields)
            .map(|bytes| bytes.len())
            .unwrap_or(0);
        if encoded > 1_048_576 {
            return Err(invalid(format!(
                "Document '{name}' cannot be written because its size ({encoded} bytes) exceeds the maximum \
                 allowed size of 1,048,576 bytes."
            )));
        }
        let create = existing.map(|document| document.create).unwrap_or(now);
        changed.insert(
            name.clone(),
            Some(Document {
                fields,
                create,
                update: now,
            }),
        );
        let mut result = json!({"updateTime": value::format_time(now)});
        if !transforms.is_empty() {
            result["transformResults"] = json!(transform_results);
        }
        Ok(result)
    }

    /// `runQuery` under `parent` (`…/documents` or a document): the matching documents, in order.
    fn run_query(
        &mut self,
        parent: &str,
        query: &Value,
        transaction: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let selectors = query["from"].as_array().cloned().unwrap_or_default();
        let [selector] = selectors.as_slice() else {
            return Err(invalid("A query must select exactly one collection."));
        };
        let collection = selector["collectionId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let descendants = selector["allDescendants"].as_bool().unwrap_or(false);
        let orders = query::orderings(query);
        let mut rows: Vec<(Vec<Value>, String)> = Vec::new();
        let prefix = format!("{parent}/");
        // A collection's documents sit together in name order: a query of one collection reads its range only, not
        // every document under the parent (a collection group's query still reads them all).
        let start = match descendants {
            true => prefix.clone(),
            false => format!("{prefix}{collection}/"),
        };
        for (name, document) in self.documents.range(start.clone()..) {
            if !name.starts_with(&start) {
                break;
            }
            let Some(rest) = name.strip_prefix(&prefix) else {
                break;
            };
            let segments: Vec<&str> = rest.split('/').collect();
            let in_collection = if descendants {
                segments.len() >= 2 && segments[segments.len() - 2] == collection
            } else {
                segments.len() == 2 && segments[0] == collection
            };
            if !in_collection {
                continue;
            }
            let row = query::Row {
                name,
                fields: &document.fields,
            };
            if let Some(filter) = query.get("where")
                && !query::passes(&row, filter).map_err(invalid)?
            {
                continue;
            }
            let Some(key) = query::sort_key(&row, &orders).map_err(invalid)? else {
                continue;
            };
            if !query::within_cursors(&key, query, &orders) {
                continue;
            }
            rows.push((key, name.clone()));
        }
        rows.sort_by(|a, b| query::compare_keys(&a.0, &b.0, &orders));
        let offset = query["offset"].as_u64().unwrap_or(0) as usize;
        let limit = match &query["limit"] {
            Value::Number(number) => number.as_u64(),
            Value::Object(wrapper) => wrapper.get("value").and_then(Value::as_u64),
            _ => None,
        }
        .map(|limit| limit as usize)
        .unwrap_or(usize::MAX);
        let mut found = Vec::new();
        for (_, name) in rows.into_iter().skip(offset).take(limit) {
            if let Some(id) = transaction {
                let seen = self.documents.get(&name).map(|document| document.update);
                self.transaction(id)?
                    .reads
                    .entry(name.clone())
                    .or_insert(seen);
            }
            let document = &self.documents[&name];
            let fields = query::project(&document.fields, query).map_err(invalid)?;
            found.push(json!({"name": name, "fields": fields, "createTime": value::format_time(document.create),
                "updateTime": value::format_time(document.update)}));
        }
        Ok(found)
    }
}
