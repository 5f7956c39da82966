//! The resource kinds antibody guards, one room each, and the registry that lists them.
//!
//! A kind's room holds everything about it: the audit methods it watches and how a resource name becomes its
//! `Target` (strictly, by Google's grammar), the re-read, the pure policy, the planned fix, how the fix is applied
//! and verified, its undo, the permissions each operation needs, how a sweep enumerates it, its console URL and its
//! configuration section. The rest of the engine sees kinds only through `Target`, `Resource`, `Fix` and the
//! functions below, which the `registry!` line per kind generates.

use std::collections::BTreeSet;
use std::future::Future;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::apply;
use crate::config::Config;
use crate::event::{AuditEvent, Transport};
use crate::gcp::{self, Client};
use crate::policy::Finding;
use crate::undo;

pub mod bucket;
pub mod dataset;
pub mod firewall;
pub mod firewall_policy;
pub mod instance_template;
pub mod log_bucket;
pub mod log_routing;
pub use crate::names;
pub mod project_iam;
pub mod public_iam;
pub mod sa_key;
pub mod sql_instance;
#[cfg(test)]
mod tests;
pub mod vm;

/// One audit-log method whose entries can break a kind: `plan` makes a trigger (and a sink-filter term) of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub service: &'static str,
    pub method: &'static str,
}

impl Watch {
    /// Whether the method's entries are written only in a folder's or an organization's audit logs, which a
    /// project's Eventarc trigger never sees (an organization sink carries them).
    pub fn above_projects(&self) -> bool {
        [".Folders.", ".Organizations."]
            .iter()
            .any(|container| self.method.contains(container))
    }
}

/// What an event points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Re-read this resource and decide.
    Check(Target),
    /// The event deleted the resource: nothing to fix.
    Deleted(Target),
    /// No policy cares about this event.
    Ignore(String),
    /// The event names a resource of a watched kind, but not in Google's grammar for it: never re-read, answered
    /// 400 and journaled as ignored, with the reason.
    Refuse(String),
}

/// A resource antibody can re-read: its kind, the project and name Google's API takes, and its audit-log name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub kind: KindId,
    pub project: String,
    /// The kind's own name for the resource (a rule's or bucket's name; empty for a project's policy).
    pub name: String,
    key: String,
    /// What the event says the change removed, for a kind whose policy must put back what was there before (JSON,
    /// the kind's own shape). Written by Google into the audit entry; a re-check or a sweep has none.
    hint: Option<std::sync::Arc<str>>,
}

impl Target {
    /// `key` is the resource's name as audit logs write it.
    pub fn new(kind: KindId, project: &str, name: &str, key: String) -> Target {
        Target {
            kind,
            project: project.to_string(),
            name: name.to_string(),
            key,
            hint: None,
        }
    }

    /// The same target, carrying what the event says the change removed.
    pub fn with_hint(mut self, hint: String) -> Target {
        self.hint = Some(hint.into());
        self
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The project the resource belongs to (for per-project caps).
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The resource's name as audit logs write it; one string per resource for locks, counters and exemptions.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The settings every kind's policy has.
#[derive(Debug, Clone, Copy)]
pub struct Common {
    pub enabled: bool,
    pub dry_run: bool,
    /// Seconds to wait before enforcing; the live state is decided again when they are up.
    pub grace_secs: u32,
}

/// What an undo restored: the resource's key, a phrase for the journal, and the state it overwrote.
pub struct Restored {
    pub resource: String,
    pub what: String,
    pub overwritten: Value,
}

/// What a sweep of one project found of one kind.
pub struct Swept<R> {
    pub resources: Vec<R>,
    pub errors: Vec<String>,
}

/// Everything the engine needs to know about one kind of resource. Implemented by a unit type in each room; the
/// registry dispatches to it statically.
pub trait Kind {
    /// The resource as re-read, typed for the policy.
    type Resource: std::fmt::Debug + Clone + PartialEq;
    /// The kind's fixes, as data (serialised with a `kind` tag naming the fix).
    type Fix: std::fmt::Debug + Clone + PartialEq + Serialize + DeserializeOwned;
    /// The kind's name in `antibody check --kind`, the journal and the docs.
    const NAME: &'static str;
    /// What `scan` reports it swept, in the plural ("firewall rules").
    const NOUN: &'static str;
    /// The audit-log methods whose entries can break this kind.
    const WATCHES: &'static [Watch];
    /// The audit-log resource names this kind re-reads, as a regular expression (RE2, as Logging's `=~` reads it):
    /// what a log sink's filter adds to the watched methods.
    const RESOURCE_PATTERN: &'static str;
    /// The inputs `antibody check --kind` accepts for this kind (`bucket` and `bucket-iam`, say).
    const INPUTS: &'static [&'static str];
    /// Whether a folder and an organization have resources of this kind of their own, which `sweep` lists when given
    /// `folders/N` or `organizations/N` instead of a project.
    const CONTAINERS: bool = false;
    /// The kind's `[policies.…]` section as written (serde, `deny_unknown_fields`, one `///` per key).
    type RawPolicy: std::fmt::Debug + Default + DeserializeOwned;
    /// The section validated: what the kind's policy reads as `config.policies.<field>`.
    type Policy: std::fmt::Debug + Clone;

    /// Validates the kind's section, adding every problem (each naming its key) to `problems`. Pure.
    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy;
    fn common(config: &Config) -> Common;
    /// Routes an event: `None` when its service or method is none of this kind's. A resource name that does not
    /// follow Google's grammar for the kind is `Route::Refuse` with the reason, never a guess.
    fn route(event: &AuditEvent) -> Option<Route>;
    /// The target an audit-log resource name denotes (sweeps, re-checks): `None` when it is not of this kind's shape.
    fn target(resource_name: &str, project: &str) -> Option<Target>;
    /// Exactly the permissions the policy's calls need: reads always, writes when `enforcing`.
    fn permissions(config: &Config, enforcing: bool) -> Vec<&'static str>;
    /// Re-reads the resource: typed for the policy, and as JSON for the journal's before-state.
    fn fetch(
        gcp: &Client,
        target: &Target,
    ) -> impl Future<Output = Result<(Self::Resource, Value), gcp::Error>> + Send;
    /// Reads what the policy needs besides the resource (the engine's clock and configuration at hand), before it is
    /// evaluated. Most kinds need nothing.
    fn enrich(
        _config: &Config,
        _gcp: &Client,
        _resource: &mut Self::Resource,
        _now_secs: i64,
    ) -> impl Future<Output = Result<(), gcp::Error>> + Send {
        async { Ok(()) }
    }
    /// Pure: the findings and the planned fix.
    fn evaluate(config: &Config, resource: &Self::Resource) -> (Vec<Finding>, Option<Self::Fix>);
    /// Why configuration leaves this resource, or this principal's change, alone.
    fn exemption(config: &Config, resource: &Self::Resource, principal: &str) -> Option<String>;
    /// The owner the resource's owner label names (`[routing] owner_label`), where the kind has labels.
    fn owner(_config: &Config, _resource: &Self::Resource) -> Option<String> {
        None
    }
    fn target_of(resource: &Self::Resource) -> Target;
    /// A short phrase for tables and alerts.
    fn describe(fix: &Self::Fix) -> String;
    /// Applies an admitted fix, re-reads and verifies; the state afterwards (`None` once deleted).
    fn apply(
        config: &Config,
        gcp: &Client,
        fix: &Self::Fix,
    ) -> impl Future<Output = Result<Option<Value>, apply::Error>> + Send;
    /// Restores the recorded `before` state, refused when the resource no longer looks like `after` unless `force`.
    fn undo(
        gcp: &Client,
        fix: &Self::Fix,
        before: &Value,
        after: &Value,
        force: bool,
    ) -> impl Future<Output = Result<Restored, undo::Error>> + Send;
    /// Lists the project's resources of this kind for a sweep.
    fn sweep(gcp: &Client, project: &str) -> impl Future<Output = Swept<Self::Resource>> + Send;
    fn console_url(target: &Target) -> String;
    /// Reads `antibody check` input: `input` is one of `INPUTS`. `Err` is a sentence about the text.
    fn parse_input(input: &str, text: &str) -> Result<Self::Resource, String>;
}

/// Lists the kinds: one line per kind, `Variant: room::Type`. Generates `KindId`, `Resource`, `Fix` and the
/// dispatch below.
macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident: $kind:ty, [policies.$section:ident] as $field:ident;)*) => {
        /// The `[policies]` table: one section per kind.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawPolicies {
            $($(#[$doc])* #[serde(default)] pub $section: <$kind as Kind>::RawPolicy,)*
        }

        /// Every kind's validated policy.
        #[derive(Debug, Clone)]
        pub struct Policies {
            $(pub $field: <$kind as Kind>::Policy,)*
        }

        impl Policies {
            /// Validates every kind's section; each problem names its key.
            pub fn validate(raw: RawPolicies, problems: &mut Vec<String>) -> Policies {
                Policies { $($field: <$kind as Kind>::validate_policy(raw.$section, problems),)* }
            }
        }

        /// Which kind a target, resource or fix is.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum KindId {
            $($variant),*
        }

        /// A resource of any kind, as it was just read from Google.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Resource {
            $($variant(<$kind as Kind>::Resource)),*
        }

        /// A fix of any kind, as data: what `apply` will do, what dry-run journals, what tests compare.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(untagged)]
        pub enum Fix {
            $($variant(<$kind as Kind>::Fix)),*
        }

        impl KindId {
            pub const ALL: &[KindId] = &[$(KindId::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(KindId::$variant => <$kind as Kind>::NAME),* }
            }

            pub fn noun(self) -> &'static str {
                match self { $(KindId::$variant => <$kind as Kind>::NOUN),* }
            }

            pub fn watches(self) -> &'static [Watch] {
                match self { $(KindId::$variant => <$kind as Kind>::WATCHES),* }
            }

            /// Whether `sweep` lists a folder's and an organization's own resources of this kind too.
            pub fn sweeps_containers(self) -> bool {
                match self { $(KindId::$variant => <$kind as Kind>::CONTAINERS),* }
            }

            pub fn resource_pattern(self) -> &'static str {
                match self { $(KindId::$variant => <$kind as Kind>::RESOURCE_PATTERN),* }
            }

            pub fn common(self, config: &Config) -> Common {
                match self { $(KindId::$variant => <$kind as Kind>::common(config)),* }
            }

            pub fn permissions(self, config: &Config, enforcing: bool) -> Vec<&'static str> {
                match self { $(KindId::$variant => <$kind as Kind>::permissions(config, enforcing)),* }
            }

            /// Lists one project's resources of this kind.
            pub async fn sweep(self, gcp: &Client, project: &str) -> Swept<Resource> {
                match self {
                    $(KindId::$variant => {
                        let swept = <$kind as Kind>::sweep(gcp, project).await;
                        Swept {
                            resources: swept.resources.into_iter().map(Resource::$variant).collect(),
                            errors: swept.errors,
                        }
                    })*
                }
            }
        }

        /// The kind that routes this event, if any does.
        fn route_by_kind(event: &AuditEvent) -> Option<Route> {
            $(if let Some(route) = <$kind as Kind>::route(event) {
                return Some(route);
            })*
            None
        }

        /// The target an audit-log resource name denotes, of whichever kind has that shape.
        pub fn target_of(resource_name: &str, project: &str) -> Option<Target> {
            $(if let Some(target) = <$kind as Kind>::target(resource_name, project) {
                return Some(target);
            })*
            None
        }

        /// `antibody check` input names, in registry order.
        pub fn inputs() -> Vec<&'static str> {
            let mut inputs = Vec::new();
            $(inputs.extend(<$kind as Kind>::INPUTS);)*
            inputs
        }

        /// Reads one resource given to `antibody check` as `input` (one of `inputs()`).
        pub fn parse_input(input: &str, text: &str) -> Result<Resource, String> {
            $(if <$kind as Kind>::INPUTS.contains(&input) {
                return <$kind as Kind>::parse_input(input, text).map(Resource::$variant);
            })*
            Err(format!("unknown kind '{input}'; expected one of: {}", inputs().join(", ")))
        }

        impl Target {
            /// Always re-reads: the event is only a pointer.
            pub async fn fetch(&self, gcp: &Client) -> Result<(Resource, Value), gcp::Error> {
                match self.kind {
                    // Boxed, like `enrich` and `apply`: a handling holds only its own kind's future, not the largest.
                    $(KindId::$variant => Box::pin(<$kind as Kind>::fetch(gcp, self))
                        .await
                        .map(|(resource, raw)| (Resource::$variant(resource), raw)),)*
                }
            }

            pub fn console_url(&self) -> String {
                match self.kind { $(KindId::$variant => <$kind as Kind>::console_url(self)),* }
            }
        }

        impl Resource {
            /// What the kind reads besides the resource before its policy runs (see `Kind::enrich`).
            pub async fn enrich(&mut self, config: &Config, gcp: &Client, now_secs: i64) -> Result<(), gcp::Error> {
                match self {
                    $(Resource::$variant(resource) => Box::pin(<$kind as Kind>::enrich(config, gcp, resource, now_secs)).await),*
                }
            }

            pub fn kind(&self) -> KindId {
                match self { $(Resource::$variant(_) => KindId::$variant),* }
            }

            pub fn target(&self) -> Target {
                match self { $(Resource::$variant(resource) => <$kind as Kind>::target_of(resource)),* }
            }

            /// Runs the kind's policy, if it is enabled. Pure.
            pub fn evaluate(&self, config: &Config) -> Plan {
                let common = self.kind().common(config);
                if !common.enabled {
                    return Plan::default();
                }
                let (findings, fix) = match self {
                    $(Resource::$variant(resource) => {
                        let (findings, fix) = <$kind as Kind>::evaluate(config, resource);
                        (findings, fix.map(Fix::$variant))
                    })*
                };
                Plan { findings, fix, dry_run: common.dry_run || config.dry_run }
            }

            /// Why configuration (allow-lists, markers) leaves this resource or this principal's change alone.
            pub fn exemption(&self, config: &Config, principal: &str) -> Option<String> {
                match self {
                    $(Resource::$variant(resource) => <$kind as Kind>::exemption(config, resource, principal)),*
                }
            }

            pub fn owner(&self, config: &Config) -> Option<String> {
                match self { $(Resource::$variant(resource) => <$kind as Kind>::owner(config, resource)),* }
            }
        }

        impl Fix {
            pub fn kind(&self) -> KindId {
                match self { $(Fix::$variant(_) => KindId::$variant),* }
            }

            /// A short phrase for tables and alerts.
            pub fn describe(&self) -> String {
                match self { $(Fix::$variant(fix) => <$kind as Kind>::describe(fix)),* }
            }

            /// Applies the fix, re-reads and verifies (called by `apply::run` only).
            pub(crate) async fn apply(&self, config: &Config, gcp: &Client) -> Result<Option<Value>, apply::Error> {
                match self { $(Fix::$variant(fix) => Box::pin(<$kind as Kind>::apply(config, gcp, fix)).await),* }
            }

            /// Restores the before-state the fix recorded (called by `undo::undo` only).
            pub(crate) async fn undo(
                &self,
                gcp: &Client,
                before: &Value,
                after: &Value,
                force: bool,
            ) -> Result<Restored, undo::Error> {
                match self {
                    $(Fix::$variant(fix) => <$kind as Kind>::undo(gcp, fix, before, after, force).await),*
                }
            }
        }
    };
}

registry! {
    /// Firewall rules that open risky ports to (almost) everyone.
    Firewall: firewall::Firewalls, [policies.open_firewall] as firewall;
    /// Network firewall policies' rules that open risky ports to (almost) everyone, judged as firewall rules.
    FirewallPolicy: firewall_policy::NetworkPolicies, [policies.firewall_policy] as firewall_policy;
    /// Project, folder and organization IAM grants that must never exist.
    ProjectIam: project_iam::ProjectIam, [policies.project_iam] as project_iam;
    /// Buckets readable or writable by allUsers / allAuthenticatedUsers.
    Bucket: bucket::Buckets, [policies.public_bucket] as bucket;
    /// Compute Engine instances and the project's common instance metadata (Security Health Analytics' findings).
    Vm: vm::Instances, [policies.vm_instance] as vm;
    /// Instance templates and the managed instance groups that build from them, judged by the instance policy.
    InstanceTemplate: instance_template::Templates, [policies.instance_template] as instance_template;
    /// User-managed service-account keys.
    SaKey: sa_key::SaKeys, [policies.sa_key] as sa_key;
    /// Log sinks and exclusions: audit logs excluded, protected sinks disabled, redirected or deleted.
    LogRouting: log_routing::LogRoutes, [policies.log_tamper] as log_tamper;
    /// Log buckets that keep audit entries fewer days than required.
    LogBucket: log_bucket::LogBuckets, [policies.log_retention] as log_retention;
    /// Topics, subscriptions, secrets, key rings, crypto keys and repositories open to allUsers/allAuthenticatedUsers.
    PublicIam: public_iam::PublicIam, [policies.public_iam] as public_iam;
    /// BigQuery datasets whose access list opens them to allUsers/allAuthenticatedUsers.
    Dataset: dataset::Datasets, [policies.public_dataset] as public_dataset;
    /// Cloud SQL instances open to (almost) everyone, or without SSL.
    SqlInstance: sql_instance::SqlInstances, [policies.public_sql] as public_sql;
}

/// What the policies concluded about one resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub findings: Vec<Finding>,
    pub fix: Option<Fix>,
    /// Every policy that found something runs in dry-run.
    pub dry_run: bool,
}

impl Plan {
    pub fn compliant(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Runs the resource's kind's policy, if it is enabled.
pub fn evaluate(config: &Config, resource: &Resource) -> Plan {
    resource.evaluate(config)
}

/// Routes an event to the resource it points at. Sweeps and re-checks name the resource directly.
pub fn route(event: &AuditEvent) -> Route {
    if matches!(event.transport, Transport::Scan | Transport::Recheck) {
        return match target_of(&event.resource_name, &event.project) {
            Some(target) => Route::Check(match &event.hint {
                Some(hint) => target.with_hint(hint.clone()),
                None => target,
            }),
            None => Route::Ignore(format!(
                "'{}' is not a resource antibody sweeps",
                names::printable(&event.resource_name)
            )),
        };
    }
    // Every part of a split entry names the same resource; the first is enough to re-read it, once.
    if let Some(split) = &event.split
        && split.index > 0
    {
        return Route::Ignore(format!(
            "part {} of {} of the split entry '{}'; its first part re-reads the resource",
            split.index + 1,
            split.total,
            names::printable(&split.uid)
        ));
    }
    route_by_kind(event).unwrap_or_else(|| {
        Route::Ignore(format!(
            "no policy watches {} {}",
            names::printable(&event.service_name),
            names::printable(&event.method_name)
        ))
    })
}

/// The triggers the enabled kinds need, in registry order.
pub fn watches(config: &Config) -> Vec<Watch> {
    KindId::ALL
        .iter()
        .filter(|kind| kind.common(config).enabled)
        .flat_map(|kind| kind.watches().iter().copied())
        .collect()
}

/// Exactly the permissions the enabled kinds' calls need; a kind in dry-run needs only its reads.
pub fn permissions(config: &Config) -> BTreeSet<&'static str> {
    KindId::ALL
        .iter()
        .filter(|kind| kind.common(config).enabled)
        .flat_map(|kind| {
            let enforcing = !kind.common(config).dry_run && !config.dry_run;
            kind.permissions(config, enforcing)
        })
        .collect()
}
