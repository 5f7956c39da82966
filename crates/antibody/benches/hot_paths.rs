//! Criterion benchmarks of the pure hot paths: decoding each envelope, routing, each policy, IAM diffing.

use std::hint::black_box;

use antibody::config::Config;
use antibody::gcp::compute::Firewall;
use antibody::gcp::iam::{Grant, Policy};
use antibody::kinds::{self, Resource};
use antibody::receive;
use axum::http::HeaderMap;
use base64::Engine;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

fn entry() -> Value {
    json!({"insertId": "-v254mddkrwe", "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
        "operation": {"first": true, "id": "operation-1536243735684-575349e2763a1-12753d9a-f2c49099", "producer": "compute.googleapis.com"},
        "protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "dev@example.com"},
            "authorizationInfo": [{"granted": true, "permission": "compute.firewalls.create",
                "resourceAttributes": {"name": "projects/p/global/firewalls/fw", "service": "compute", "type": "compute.firewalls"}}],
            "methodName": "v1.compute.firewalls.insert",
            "request": {"@type": "type.googleapis.com/compute.firewalls.insert", "alloweds": [{"IPProtocol": "tcp", "ports": ["22"]}],
                "direction": "INGRESS", "name": "fw", "network": "https://www.googleapis.com/compute/v1/projects/p/global/networks/default",
                "sourceRanges": ["0.0.0.0/0"]},
            "requestMetadata": {"callerIp": "203.0.113.7", "callerSuppliedUserAgent": "google-cloud-sdk gcloud/450.0.0 command/gcloud.compute.firewall-rules.create"},
            "resourceLocation": {"currentLocations": ["global"]},
            "resourceName": "projects/p/global/firewalls/fw",
            "response": {"@type": "type.googleapis.com/operation", "id": "6391730053939234551", "name": "operation-1536243735684",
                "operationType": "insert", "progress": "0", "status": "PENDING", "targetId": "5133249119463966455",
                "targetLink": "https://www.googleapis.com/compute/v1/projects/p/global/firewalls/fw", "user": "dev@example.com"},
            "serviceName": "compute.googleapis.com"},
        "receiveTimestamp": "2018-09-06T14:22:17.093074323Z",
        "resource": {"labels": {"firewall_rule_id": "5133249119463966455", "project_id": "p"}, "type": "gce_firewall_rule"},
        "severity": "NOTICE", "timestamp": "2018-09-06T14:22:15.73Z"})
}

fn decoding(c: &mut Criterion) {
    let body = entry().to_string();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    let mut binary = HeaderMap::new();
    for (name, value) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "42"),
        (
            "ce-source",
            "//cloudaudit.googleapis.com/projects/p/logs/activity",
        ),
        ("ce-type", "google.cloud.audit.log.v1.written"),
        ("content-type", "application/json; charset=utf-8"),
    ] {
        binary.insert(name, value.parse().expect("header"));
    }
    group.bench_function("eventarc_binary", |b| {
        b.iter(|| receive::decode(black_box(&binary), black_box(body.as_bytes())))
    });
    let structured = json!({"specversion": "1.0", "id": "42", "source": "s", "type": "google.cloud.audit.log.v1.written", "data": entry()}).to_string();
    let mut ce = HeaderMap::new();
    ce.insert(
        "content-type",
        "application/cloudevents+json".parse().expect("header"),
    );
    group.bench_function("eventarc_structured", |b| {
        b.iter(|| receive::decode(black_box(&ce), black_box(structured.as_bytes())))
    });
    let push = json!({"subscription": "projects/p/subscriptions/s", "message": {"messageId": "1",
        "data": base64::engine::general_purpose::STANDARD.encode(&body)}})
    .to_string();
    group.bench_function("pubsub_push", |b| {
        b.iter(|| receive::decode(black_box(&HeaderMap::new()), black_box(push.as_bytes())))
    });
    group.finish();
}

fn routing_and_policies(c: &mut Criterion) {
    let config = Config::default();
    let event = match receive::decode(&HeaderMap::new(), entry().to_string().as_bytes()) {
        Ok(receive::Decoded::Event(event)) => *event,
        _ => panic!("the bench entry decodes"),
    };
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    group.bench_function("route", |b| {
        b.iter(|| antibody::kinds::route(black_box(&event)))
    });
    let firewall: Firewall = serde_json::from_value(json!({"name": "fw", "sourceRanges": ["0.0.0.0/0", "10.0.0.0/8"],
        "allowed": [{"IPProtocol": "tcp", "ports": ["22", "80", "8000-9000"]}, {"IPProtocol": "udp", "ports": ["53"]}]})).expect("firewall");
    let resource = Resource::Firewall(antibody::kinds::firewall::FirewallRule {
        project: "bench-project".into(),
        firewall,
    });
    group.bench_function("open_firewall", |b| {
        b.iter(|| kinds::evaluate(black_box(&config), black_box(&resource)))
    });
    let iam: Policy = serde_json::from_value(json!({"version": 3, "etag": "BwX=", "bindings": (0..40).map(|index| json!({
        "role": format!("roles/custom.role{index}"), "members": [format!("user:u{index}@example.com"), format!("group:g{index}@example.com"),
        "serviceAccount:sa@p.iam.gserviceaccount.com"]})).chain([json!({"role": "roles/editor", "members": ["user:x@gmail.com"]})]).collect::<Vec<_>>()}))
        .expect("policy");
    let project = Resource::ProjectIam(antibody::kinds::project_iam::ProjectPolicy {
        audit_deltas: Vec::new(),
        project: "bench-project".into(),
        container: None,
        policy: iam.clone(),
    });
    group.bench_function("project_iam_41_bindings", |b| {
        b.iter(|| kinds::evaluate(black_box(&config), black_box(&project)))
    });
    let grants = vec![Grant {
        role: "roles/editor".into(),
        member: "user:x@gmail.com".into(),
        condition: None,
    }];
    group.bench_function("iam_remove_grants", |b| {
        b.iter(|| black_box(&iam).without(black_box(&grants)))
    });
    group.finish();
}

criterion_group!(benches, decoding, routing_and_policies);
criterion_main!(benches);
