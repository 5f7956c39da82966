//! A Cloud Storage bucket as the JSON API shows it, with its ACLs mirrored into IAM's legacy roles.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::iam::StoredPolicy;

pub(crate) const STORAGE_ROOT: &str = "https://www.googleapis.com/storage/v1";

/// One bucket; `acl` is the source of truth for the `roles/storage.legacyBucket*` bindings.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub name: String,
    pub project: String,
    pub project_number: u64,
    pub metageneration: u64,
    pub generation: u64,
    pub location: String,
    pub storage_class: String,
    pub time_created: String,
    pub updated: String,
    pub labels: BTreeMap<String, String>,
    pub uniform_access: bool,
    pub uniform_locked_time: Option<String>,
    pub public_access_prevention: String,
    pub acl: Vec<(String, String)>,
    pub default_object_acl: Vec<(String, String)>,
    /// Non-legacy bindings (and legacy object roles, which have no bucket ACL).
    pub policy: StoredPolicy,
    /// Configuration Storage keeps as written (`lifecycle`, `versioning`, `website`, …), by field.
    pub kept: BTreeMap<String, Value>,
}

/// The bucket fields Storage stores as the caller wrote them.
pub(crate) const KEPT: &[&str] = &[
    "lifecycle",
    "versioning",
    "website",
    "cors",
    "logging",
    "retentionPolicy",
    "softDeletePolicy",
    "encryption",
    "autoclass",
    "billing",
];

/// `CAQ=`: Cloud Storage etags are the metageneration as a protobuf varint field 1.
pub(crate) fn etag(metageneration: u64) -> String {
    let mut bytes = vec![0x08];
    let mut value = metageneration;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    STANDARD.encode(bytes)
}

pub(crate) const LEGACY: [(&str, &str); 3] = [
    ("OWNER", "roles/storage.legacyBucketOwner"),
    ("WRITER", "roles/storage.legacyBucketWriter"),
    ("READER", "roles/storage.legacyBucketReader"),
];

impl Bucket {
    pub fn etag(&self) -> String {
        etag(self.metageneration)
    }

    /// `project-owners-123` → `projectOwner:my-project`, `user-a@x.com` → `user:a@x.com`, `allUsers` as is.
    pub fn member_of(&self, entity: &str) -> String {
        let teams = [
            ("project-owners-", "projectOwner:"),
            ("project-editors-", "projectEditor:"),
            ("project-viewers-", "projectViewer:"),
        ];
        for (prefix, member) in teams {
            if entity.starts_with(prefix) {
                return format!("{member}{}", self.project);
            }
        }
        for (prefix, kind) in [
            ("user-", "user:"),
            ("group-", "group:"),
            ("domain-", "domain:"),
        ] {
            if let Some(rest) = entity.strip_prefix(prefix) {
                return format!("{kind}{rest}");
            }
        }
        entity.to_string()
    }

    /// The inverse of `member_of`.
    pub fn entity_of(&self, member: &str) -> String {
        let teams = [
            ("projectOwner:", "project-owners-"),
            ("projectEditor:", "project-editors-"),
            ("projectViewer:", "project-viewers-"),
        ];
        for (kind, prefix) in teams {
            if member.starts_with(kind) {
                return format!("{prefix}{}", self.project_number);
            }
        }
        for (kind, prefix) in [
            ("user:", "user-"),
            ("group:", "group-"),
            ("domain:", "domain-"),
        ] {
            if let Some(rest) = member.strip_prefix(kind) {
                return format!("{prefix}{rest}");
            }
        }
        member.to_string()
    }

    /// The legacy bindings the ACL implies.
    pub fn legacy_bindings(&self) -> Vec<Value> {
        LEGACY
            .iter()
            .filter_map(|(acl_role, iam_role)| {
                let members: Vec<String> = self
                    .acl
                    .iter()
                    .filter(|(_, role)| role == acl_role)
                    .map(|(entity, _)| self.member_of(entity))
                    .collect();
                (!members.is_empty()).then(|| json!({"role": iam_role, "members": members}))
            })
            .collect()
    }

    /// Every binding, legacy ones first, as `getIamPolicy` shows them.
    pub fn all_bindings(&self) -> Vec<Value> {
        let mut bindings = self.legacy_bindings();
        bindings.extend(self.policy.bindings.iter().cloned());
        bindings
    }

    pub fn iam_view(&self, requested: i64) -> Value {
        let combined = StoredPolicy {
            bindings: self.all_bindings(),
            audit_configs: Vec::new(),
            revision: 0,
        };
        let mut view = combined.view(requested);
        view["etag"] = json!(self.etag());
        view["kind"] = json!("storage#policy");
        view["resourceId"] = json!(format!("projects/_/buckets/{}", self.name));
        view
    }

    fn access_control(&self, kind: &str, entity: &str, role: &str) -> Value {
        let mut control =
            json!({"kind": kind, "entity": entity, "role": role, "etag": self.etag()});
        if kind == "storage#bucketAccessControl" {
            control["id"] = json!(format!("{}/{entity}", self.name));
            control["selfLink"] = json!(format!("{STORAGE_ROOT}/b/{}/acl/{entity}", self.name));
            control["bucket"] = json!(self.name);
        }
        for (prefix, team) in [
            ("project-owners-", "owners"),
            ("project-editors-", "editors"),
            ("project-viewers-", "viewers"),
        ] {
            if let Some(number) = entity.strip_prefix(prefix) {
                control["projectTeam"] = json!({"projectNumber": number, "team": team});
            }
        }
        for (prefix, field) in [
            ("user-", "email"),
            ("group-", "email"),
            ("domain-", "domain"),
        ] {
            if let Some(rest) = entity.strip_prefix(prefix) {
                control[field] = json!(rest);
            }
        }
        control
    }

    pub fn acl_view(&self) -> Vec<Value> {
        self.acl
            .iter()
            .map(|(entity, role)| self.access_control("storage#bucketAccessControl", entity, role))
            .collect()
    }

    /// The resource as `GET /storage/v1/b/{bucket}` returns it; ACLs only with `projection=full` and uniform access off.
    pub fn view(&self, full: bool) -> Value {
        let locked = self.uniform_locked_time.clone();
        let mut uniform = json!({"enabled": self.uniform_access});
        if let (true, Some(locked)) = (self.uniform_access, &locked) {
            uniform["lockedTime"] = json!(locked);
        }
        let mut bucket = json!({
            "kind": "storage#bucket",
            "selfLink": format!("{STORAGE_ROOT}/b/{}", self.name),
            "id": self.name,
            "name": self.name,
            "projectNumber": self.project_number.to_string(),
            "generation": self.generation.to_string(),
            "metageneration": self.metageneration.to_string(),
            "location": self.location,
            "locationType": "multi-region",
            "storageClass": self.storage_class,
            "etag": self.etag(),
            "timeCreated": self.time_created,
            "updated": self.updated,
            "iamConfiguration": {
                "bucketPolicyOnly": uniform.clone(),
                "uniformBucketLevelAccess": uniform,
                "publicAccessPrevention": self.public_access_prevention,
            },
            "rpo": "DEFAULT",
        });
        if !self.labels.is_empty() {
            bucket["labels"] = json!(self.labels);
        }
        for (field, value) in &self.kept {
            bucket[field.as_str()] = value.clone();
        }
        if full && !self.uniform_access {
            bucket["acl"] = Value::Array(self.acl_view());
            bucket["defaultObjectAcl"] = Value::Array(
                self.default_object_acl
                    .iter()
                    .map(|(entity, role)| {
                        self.access_control("storage#objectAccessControl", entity, role)
                    })
                    .collect(),
            );
            bucket["owner"] = json!({"entity": format!("project-owners-{}", self.project_number)});
        }
        bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_the_metageneration_as_a_varint() {
        assert_eq!(etag(4), "CAQ=");
        assert_eq!(etag(5), "CAU=");
        assert_eq!(etag(1), "CAE=");
        assert_eq!(etag(300), "CKwC");
    }
}
