//! Fuzz target: any text as a Logging filter, as antibody judges an exclusion or `_Default`: parsed, and if it
//! parses, evaluated against an audit entry, never a panic; without `sample()` the three-valued answer is the plain one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = logquery::Query::parse(text) else {
        return;
    };
    let entry = serde_json::json!({
        "insertId": "x", "severity": "NOTICE",
        "logName": "projects/p/logs/cloudaudit.googleapis.com%2Fdata_access",
        "resource": {"type": "gcs_bucket", "labels": {"project_id": "p"}},
        "protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": "storage.googleapis.com", "methodName": "storage.objects.get"},
    });
    let plain = query.matches(&entry);
    if !text.to_ascii_lowercase().contains("sample") {
        assert_eq!(query.selects(&entry), Some(plain), "{text}");
    }
});
