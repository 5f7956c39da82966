//! Fuzz target: any JSON value as a Cloud Audit Log entry, then routing.
#![no_main]

use antibody::event::{AuditEvent, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(event) = AuditEvent::from_log_entry(&entry, Transport::LogEntry, None) {
        let _ = antibody::route::route(&event);
    }
});
