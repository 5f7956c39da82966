//! Fuzz target: everything a push can carry (CloudEvent binary or structured, Pub/Sub envelope, raw LogEntry) through
//! `receive::decode`, then routing. The first byte picks the headers; the rest is the body.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let content_type = match selector % 4 {
        0 => {
            for (name, value) in [
                ("ce-specversion", "1.0"),
                ("ce-id", "fuzz-id"),
                ("ce-source", "//cloudaudit.googleapis.com/projects/p/logs/activity"),
                ("ce-type", "google.cloud.audit.log.v1.written"),
            ] {
                headers.insert(name, HeaderValue::from_static(value));
            }
            "application/json; charset=utf-8"
        }
        1 => "application/cloudevents+json; charset=utf-8",
        2 => "application/json",
        _ => "text/plain",
    };
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(antibody::receive::Decoded::Event(event)) = antibody::receive::decode(&headers, body) {
        let _ = antibody::kinds::route(&event);
        let _ = event.verb();
    }
});
