//! Fuzz target: firewall, bucket, IAM policy, instance and service-account key JSON as Google's APIs could answer, through every policy
//! with the default configuration. The first byte picks the resource kind.
#![no_main]

use antibody::config::Config;
use antibody::gcp::{compute::Firewall, iam::Policy, instances, storage::Bucket};
use antibody::kinds::{
    bucket, firewall::FirewallRule, vm::Vm, project_iam::ProjectPolicy, sa_key::AccountKeys,
};
use antibody::kinds::{Resource, evaluate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else {
        return;
    };
    let project = "fuzz-project".to_string();
    let resource = match selector % 5 {
        0 => match serde_json::from_slice::<Firewall>(json) {
            Ok(firewall) => Resource::Firewall(FirewallRule { project, firewall }),
            Err(_) => return,
        },
        1 => match serde_json::from_slice::<Policy>(json) {
            Ok(policy) => Resource::ProjectIam(ProjectPolicy {
                audit_deltas: Vec::new(),
                project,
                container: None,
                policy,
            }),
            Err(_) => return,
        },
        4 => {
            // An account and its keys, as IAM lists them: {"account": ..., "keys": [...]}.
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
                return;
            };
            let (Ok(account), Ok(keys)) = (
                serde_json::from_value(value["account"].clone()),
                serde_json::from_value(value["keys"].clone()),
            ) else {
                return;
            };
            Resource::SaKey(AccountKeys {
                project,
                account,
                keys,
                expired: Vec::new(),
            })
        }
        3 => {
            // An instance and its project's common metadata, as one JSON object {"instance": ..., "common": ...}.
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
                return;
            };
            let (Ok(instance), Ok(common)) = (
                serde_json::from_value::<instances::Instance>(value["instance"].clone()),
                serde_json::from_value::<instances::Metadata>(value["common"].clone()),
            ) else {
                return;
            };
            Resource::Vm(Vm::Instance {
                project,
                zone: "us-central1-a".into(),
                instance: Box::new(instance),
                common,
            })
        }
        _ => {
            // A bucket and its policy, as one JSON object {"bucket": ..., "iam": ...}.
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
                return;
            };
            let (Ok(bucket), Ok(policy)) = (
                serde_json::from_value::<Bucket>(value["bucket"].clone()),
                serde_json::from_value::<Policy>(value["iam"].clone()),
            ) else {
                return;
            };
            Resource::Bucket(bucket::Bucket { project, bucket, policy })
        }
    };
    let plan = evaluate(&Config::default(), &resource);
    if let Some(fix) = plan.fix {
        let _ = fix.describe();
    }
});
