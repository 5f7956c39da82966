//! IAM policies as every Google API stores them: version 3 with conditions, etags that advance on every write,
//! the `_withcond_` downgrade for version-1 readers, and the `policyDelta` that audit entries carry.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// A stored policy and the counter behind its etag.
#[derive(Debug, Clone)]
pub(crate) struct StoredPolicy {
    pub bindings: Vec<Value>,
    pub audit_configs: Vec<Value>,
    pub revision: u64,
}

impl StoredPolicy {
    pub fn new(bindings: Vec<Value>) -> Self {
        StoredPolicy {
            bindings,
            audit_configs: Vec::new(),
            revision: 1,
        }
    }

    /// `BwWP6/SoJ90=`-style: base64 of eight bytes that change on every write.
    pub fn etag(&self) -> String {
        let mut bytes = [0u8; 8];
        bytes[0] = 0x07;
        bytes[2..].copy_from_slice(&self.revision.to_be_bytes()[2..]);
        STANDARD.encode(bytes)
    }

    pub fn has_conditions(&self) -> bool {
        self.bindings
            .iter()
            .any(|binding| binding.get("condition").is_some())
    }

    /// The policy as a reader asking for `requested` sees it. Below version 3 a conditional binding comes back
    /// without its condition and with its role renamed `ROLE_withcond_<hash>`, as Google does.
    pub fn view(&self, requested: i64) -> Value {
        let conditional = self.has_conditions();
        let (version, bindings) = if conditional && requested < 3 {
            let bindings = self
                .bindings
                .iter()
                .map(|binding| match binding.get("condition") {
                    Some(condition) => {
                        let role = binding["role"].as_str().unwrap_or_default();
                        json!({"role": format!("{role}_withcond_{}", short_hash(&condition.to_string())), "members": binding["members"]})
                    }
                    None => binding.clone(),
                })
                .collect();
            (1, bindings)
        } else {
            (if conditional { 3 } else { 1 }, self.bindings.clone())
        };
        let mut policy = json!({"version": version, "etag": self.etag()});
        if !bindings.is_empty() {
            policy["bindings"] = Value::Array(bindings);
        }
        if !self.audit_configs.is_empty() {
            policy["auditConfigs"] = Value::Array(self.audit_configs.clone());
        }
        policy
    }
}

fn short_hash(text: &str) -> String {
    let hash = crate::digest(text);
    format!("{hash:016x}{:04x}", hash >> 48)
}

/// `options.requestedPolicyVersion` of a `getIamPolicy` request (a number or a numeric string; absent is 0):
/// Google accepts 0, 1 and 3.
pub(crate) fn requested_version(request: &Value) -> Result<i64, String> {
    let requested = &request["options"]["requestedPolicyVersion"];
    let requested = requested
        .as_i64()
        .or_else(|| requested.as_str().and_then(|text| text.parse().ok()))
        .unwrap_or(0);
    if [0, 1, 3].contains(&requested) {
        Ok(requested)
    } else {
        Err(format!(
            "Invalid requested policy version: {requested}. Use 1 or 3."
        ))
    }
}

/// Google's 409 for a read-modify-write that lost a race: the etag it sent is not the policy's any more.
pub(crate) fn concurrent_change() -> crate::error::ApiError {
    crate::error::ApiError {
        status: axum::http::StatusCode::CONFLICT,
        reason: "aborted",
        message:
            "There were concurrent policy changes. Please retry the whole read-modify-write with \
                  exponential backoff."
                .into(),
        grpc_status: Some("ABORTED"),
    }
}

/// A Resource Manager `setIamPolicy` request (a project's, an organization's or a folder's), checked as Google checks
/// it: first on its own, then against the stored policy, then written.
pub(crate) struct PolicyWrite<'a> {
    policy: &'a Value,
    pub bindings: Vec<Value>,
    audit_configs: bool,
}

impl<'a> PolicyWrite<'a> {
    /// `noun` names what the policy is on (`project`, `organization`, `folder`) in the refusal of a public member.
    pub(crate) fn read(request: &'a Value, noun: &str) -> Result<Self, String> {
        PolicyWrite::read_with(request, Some(noun))
    }

    /// `read`, for a resource whose policy may name `allUsers` and `allAuthenticatedUsers` (a topic, a secret, a key).
    pub(crate) fn read_allowing_public(request: &'a Value) -> Result<Self, String> {
        PolicyWrite::read_with(request, None)
    }

    /// `refuse_public`: the noun of a resource that refuses public members.
    fn read_with(request: &'a Value, refuse_public: Option<&str>) -> Result<Self, String> {
        let policy = request
            .get("policy")
            .filter(|policy| policy.is_object())
            .ok_or("policy is required")?;
        let bindings = check_bindings(policy)?;
        if let Some(noun) = refuse_public
            && let Some(public) = bindings
                .iter()
                .flat_map(|binding| binding["members"].as_array().cloned().unwrap_or_default())
                .find(|member| member == "allUsers" || member == "allAuthenticatedUsers")
        {
            return Err(format!(
                "Request contains an invalid argument: {} cannot be granted on a {noun}.",
                public.as_str().unwrap_or_default()
            ));
        }
        if policy["version"].as_i64().unwrap_or(1) < 3
            && bindings
                .iter()
                .any(|binding| binding.get("condition").is_some())
        {
            return Err("Conditional role bindings require policy version 3 or higher.".into());
        }
        let mask = request["updateMask"].as_str().unwrap_or("bindings,etag");
        Ok(PolicyWrite {
            policy,
            bindings,
            audit_configs: mask.split(',').any(|field| field.trim() == "auditConfigs"),
        })
    }

    /// Against the stored policy: a stale etag is Google's 409 (a lost race), a version-1 write over conditions 400.
    pub(crate) fn check_against(
        &self,
        stored: &StoredPolicy,
    ) -> Result<(), crate::error::ApiError> {
        if let Some(etag) = self.policy["etag"]
            .as_str()
            .filter(|etag| *etag != stored.etag())
        {
            tracing::debug!(%etag, current = %stored.etag(), "stale etag");
            return Err(concurrent_change());
        }
        match version_below_existing(self.policy, stored) {
            Some(message) => Err(crate::error::ApiError::esf(
                axum::http::StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                message,
            )),
            None => Ok(()),
        }
    }

    /// Writes the bindings (and `auditConfigs` when the mask names them) as a new revision; returns the bindings it
    /// replaced.
    pub(crate) fn apply(self, stored: &mut StoredPolicy) -> Vec<Value> {
        if self.audit_configs {
            stored.audit_configs = self.policy["auditConfigs"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        }
        stored.revision += 1;
        std::mem::replace(&mut stored.bindings, self.bindings)
    }
}

/// Checks the shape of incoming bindings; returns them normalised (empty bindings dropped, members sorted).
pub(crate) fn check_bindings(policy: &Value) -> Result<Vec<Value>, String> {
    let Some(bindings) = policy.get("bindings") else {
        return Ok(Vec::new());
    };
    let bindings = bindings
        .as_array()
        .ok_or("policy.bindings must be a list")?;
    let mut out = Vec::new();
    for (index, binding) in bindings.iter().enumerate() {
        let role = binding["role"]
            .as_str()
            .filter(|role| !role.is_empty())
            .ok_or_else(|| format!("policy.bindings[{index}].role is required"))?;
        // Predefined roles are `roles/` and letters, digits and dots; custom roles live under a project or an
        // organization. Anything else — a `_withcond_` name a version-1 reader saw, say — is no role at all.
        let predefined = role.strip_prefix("roles/").is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        });
        let custom = (role.starts_with("projects/") || role.starts_with("organizations/"))
            && role.contains("/roles/");
        if !predefined && !custom {
            return Err(format!("Role {role} is not supported for this resource."));
        }
        let members = binding["members"].as_array().cloned().unwrap_or_default();
        let mut unique = BTreeSet::new();
        for member in &members {
            let member = member
                .as_str()
                .ok_or_else(|| format!("policy.bindings[{index}].members must be strings"))?;
            let valid = matches!(member, "allUsers" | "allAuthenticatedUsers")
                || member
                    .split_once(':')
                    .is_some_and(|(kind, value)| !kind.is_empty() && !value.is_empty());
            if !valid {
                return Err(format!(
                    "Invalid member: {member}. Members must be of the form \"<type>:<value>\"."
                ));
            }
            unique.insert(member.to_string());
        }
        if unique.is_empty() {
            continue;
        }
        let mut normalised =
            json!({"role": role, "members": unique.into_iter().collect::<Vec<_>>()});
        if let Some(condition) = binding
            .get("condition")
            .filter(|condition| !condition.is_null())
        {
            if condition["expression"].as_str().is_none_or(str::is_empty) {
                return Err(format!(
                    "policy.bindings[{index}].condition.expression is required"
                ));
            }
            normalised["condition"] = condition.clone();
        }
        out.push(normalised);
    }
    Ok(out)
}

/// Google's refusal of a version-1 write, sent with its etag, over a policy that holds conditions (without the etag
/// such a write overwrites the policy and the conditions are lost: that case is not refused).
pub(crate) fn version_below_existing(written: &Value, stored: &StoredPolicy) -> Option<String> {
    let version = written["version"].as_i64().unwrap_or(1);
    (version < 3 && written.get("etag").is_some() && stored.has_conditions()).then(|| {
        format!("Specified policy version ({version}) cannot be less than the existing policy version (3).")
    })
}

impl StoredPolicy {
    /// Grants `role` to `member` without a condition: another writer's change, as the race hooks land it.
    pub(crate) fn grant(&mut self, role: &str, member: &str) {
        match self
            .bindings
            .iter_mut()
            .find(|binding| binding["role"] == role && binding.get("condition").is_none())
        {
            Some(binding) => binding["members"]
                .as_array_mut()
                .expect("members are a list")
                .push(serde_json::json!(member)),
            None => self
                .bindings
                .push(serde_json::json!({"role": role, "members": [member]})),
        }
    }
}

/// `serviceData.policyDelta.auditConfigDeltas`: the log types (and their exempted members) a write added and removed.
pub(crate) fn audit_delta(before: &[Value], after: &[Value]) -> Vec<Value> {
    let entries = |configs: &[Value]| -> BTreeSet<(String, String, String)> {
        let mut entries = BTreeSet::new();
        for config in configs {
            let service = config["service"].as_str().unwrap_or_default().to_string();
            for log in config["auditLogConfigs"].as_array().into_iter().flatten() {
                let log_type = log["logType"].as_str().unwrap_or_default().to_string();
                entries.insert((service.clone(), log_type.clone(), String::new()));
                for member in log["exemptedMembers"].as_array().into_iter().flatten() {
                    let member = member.as_str().unwrap_or_default().to_string();
                    entries.insert((service.clone(), log_type.clone(), member));
                }
            }
        }
        entries
    };
    let (before, after) = (entries(before), entries(after));
    let change = |action: &str, (service, log_type, member): &(String, String, String)| {
        let mut delta = json!({"action": action, "service": service, "logType": log_type});
        if !member.is_empty() {
            delta["exemptedMember"] = json!(member);
        }
        delta
    };
    before
        .difference(&after)
        .map(|entry| change("REMOVE", entry))
        .chain(after.difference(&before).map(|entry| change("ADD", entry)))
        .collect()
}

/// `serviceData.policyDelta.bindingDeltas`: what a write added and removed, one (role, member, condition) each.
pub(crate) fn delta(before: &[Value], after: &[Value]) -> Vec<Value> {
    let pairs = |bindings: &[Value]| -> BTreeSet<(String, String, String)> {
        bindings
            .iter()
            .flat_map(|binding| {
                let role = binding["role"].as_str().unwrap_or_default().to_string();
                let condition = binding
                    .get("condition")
                    .map(Value::to_string)
                    .unwrap_or_default();
                binding["members"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |member| {
                        (
                            role.clone(),
                            member.as_str().unwrap_or_default().to_string(),
                            condition.clone(),
                        )
                    })
            })
            .collect()
    };
    let (old, new) = (pairs(before), pairs(after));
    let mut deltas = Vec::new();
    for (action, set, other) in [("REMOVE", &old, &new), ("ADD", &new, &old)] {
        for (role, member, condition) in set.difference(other) {
            let mut delta = json!({"action": action, "role": role, "member": member});
            if !condition.is_empty() {
                delta["condition"] = serde_json::from_str(condition).unwrap_or(Value::Null);
            }
            deltas.push(delta);
        }
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_change_with_every_revision() {
        let mut policy = StoredPolicy::new(Vec::new());
        let first = policy.etag();
        policy.revision += 1;
        assert_ne!(first, policy.etag());
        assert_eq!(first.len(), 12);
    }

    #[test]
    fn version_one_readers_see_withcond_roles() {
        let policy = StoredPolicy::new(vec![
            json!({"role": "roles/viewer", "members": ["user:a@x.com"]}),
            json!({"role": "roles/iam.serviceAccountAdmin", "members": ["user:b@x.com"], "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}}),
        ]);
        let v1 = policy.view(1);
        assert_eq!(v1["version"], 1);
        let role = v1["bindings"][1]["role"].as_str().expect("role");
        assert!(
            role.starts_with("roles/iam.serviceAccountAdmin_withcond_"),
            "{role}"
        );
        assert!(v1["bindings"][1].get("condition").is_none());
        let v3 = policy.view(3);
        assert_eq!(v3["version"], 3);
        assert!(v3["bindings"][1].get("condition").is_some());
    }

    #[test]
    fn deltas_name_each_added_and_removed_member() {
        let before =
            vec![json!({"role": "roles/viewer", "members": ["user:a@x.com", "user:b@x.com"]})];
        let after =
            vec![json!({"role": "roles/viewer", "members": ["user:a@x.com", "user:c@gmail.com"]})];
        assert_eq!(
            delta(&before, &after),
            vec![
                json!({"action": "REMOVE", "role": "roles/viewer", "member": "user:b@x.com"}),
                json!({"action": "ADD", "role": "roles/viewer", "member": "user:c@gmail.com"}),
            ]
        );
    }
}
