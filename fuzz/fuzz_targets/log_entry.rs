//! Fuzz target: any JSON text as a Cloud Audit Log entry, read both from the text and from a parsed value (the two
//! readings must agree), then routing.
#![no_main]

use antibody::event::{AuditEvent, LogEntry, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let from_value = AuditEvent::from_log_entry(&entry, Transport::LogEntry, None);
    // A text with a repeated key is refused by the text reading (serde's duplicate-field check); the value
    // reading keeps the last copy. Otherwise the two agree.
    if let Ok(parsed) = LogEntry::parse(data) {
        let from_text = AuditEvent::from_parsed(parsed, Transport::LogEntry, None);
        assert_eq!(from_text, from_value);
    }
    if let Ok(event) = from_value {
        let _ = antibody::kinds::route(&event);
    }
});
