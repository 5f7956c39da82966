//! IAM policies as Google's APIs return them: version, bindings with optional conditions, auditConfigs, etag.
//! Every field antibody does not interpret is kept verbatim, so a read-modify-write never drops anything.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(default)]
    pub version: i64,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub bindings: Vec<Binding>,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub audit_configs: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub role: String,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub members: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One grant to take away: a conditional binding is matched together with its condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub role: String,
    pub member: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

impl Policy {
    /// A role named `ROLE_withcond_HASH` means the policy was read below version 3: writing it back would destroy
    /// conditions, so such a read must never be written.
    pub fn downgraded(&self) -> bool {
        self.bindings
            .iter()
            .any(|binding| binding.role.contains("_withcond_"))
    }

    pub fn grants(&self) -> impl Iterator<Item = Grant> + '_ {
        self.bindings.iter().flat_map(|binding| {
            binding.members.iter().map(|member| Grant {
                role: binding.role.clone(),
                member: member.clone(),
                condition: binding.condition.clone(),
            })
        })
    }

    /// The policy without `grants`, and how many were present. Everything else stays as it was.
    pub fn without(&self, grants: &[Grant]) -> (Policy, usize) {
        let mut policy = self.clone();
        let mut removed = 0;
        for binding in &mut policy.bindings {
            let before = binding.members.len();
            binding.members.retain(|member| {
                !grants.iter().any(|grant| {
                    grant.role == binding.role
                        && &grant.member == member
                        && grant.condition == binding.condition
                })
            });
            removed += before - binding.members.len();
        }
        policy
            .bindings
            .retain(|binding| !binding.members.is_empty());
        (policy, removed)
    }

    /// Whether some unconditional `roles/owner` member remains.
    /// Whether some member holds `role` unconditionally.
    pub fn has_member_of(&self, role: &str) -> bool {
        self.bindings.iter().any(|binding| {
            binding.role == role && binding.condition.is_none() && !binding.members.is_empty()
        })
    }

    pub fn has_owner(&self) -> bool {
        self.bindings.iter().any(|binding| {
            binding.role == "roles/owner"
                && binding.condition.is_none()
                && !binding.members.is_empty()
        })
    }
}

/// An IAM policy as `getIamPolicy` returns it, read at version 3 (a `_withcond_` read is refused).
pub fn parse_policy(text: &str) -> Result<Policy, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("the input is not valid JSON: {err}"))?;
    if value
        .get("bindings")
        .is_none_or(|bindings| !bindings.is_array())
        && value.get("etag").is_none()
    {
        return Err("the input is not an IAM policy: expected an object with 'bindings'".into());
    }
    let policy: Policy = serde_json::from_value(value)
        .map_err(|err| format!("the input is not an IAM policy: {err}"))?;
    if policy.downgraded() {
        return Err("the policy was read below version 3 (a _withcond_ role): read it with requestedPolicyVersion 3".into());
    }
    Ok(policy)
}
