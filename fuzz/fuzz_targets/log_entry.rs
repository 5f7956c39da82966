//! Fuzz target: any JSON text as a Cloud Audit Log entry, read both from the text and from a parsed value (the two
//! readings must agree), then routing with its strict resource-name parsing.
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
        // Routing parses the resource name strictly: whatever it accepts must name the resource it keys, and
        // a sweep's reading of that key must find the same resource.
        if let antibody::kinds::Route::Check(target) | antibody::kinds::Route::Deleted(target) =
            antibody::kinds::route(&event)
        {
            let again = antibody::kinds::target_of(target.key(), target.project())
                .expect("a routed target's key parses again");
            assert_eq!(again.key(), target.key());
            assert!(target.key().bytes().all(|byte| byte.is_ascii_graphic()));
        }
        let _ = antibody::kinds::target_of(&event.resource_name, &event.project);
    }
});
