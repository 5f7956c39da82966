//! Service-account keys (IAM): the `sa-key` policy, its fix (disable every enabled user-managed key of the account)
//! and its undo (enable them again).

pub mod config;
pub mod policy;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply;
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::iam_admin::{Key, ServiceAccount};
use crate::gcp::{self, Client};
use crate::policy::Finding;
use crate::undo;

pub use policy::SaKeyPolicy;

/// The service-account key kind.
pub struct SaKeys;

/// An account with its user-managed keys, as just read.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountKeys {
    pub project: String,
    pub account: ServiceAccount,
    pub keys: Vec<Key>,
    /// Disabled keys past `delete_after`, as the audit log dates their disabling (filled before evaluation).
    pub expired: Vec<String>,
}

/// The fix of an account's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// `keys/ID:disable` for each key: it stops authenticating at once and can be enabled again.
    DisableKeys {
        project: String,
        account: String,
        keys: Vec<String>,
        /// Disabled keys past `delete_after`, deleted for good.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        delete: Vec<String>,
    },
}

const WATCHES: &[Watch] = &[
    watch("google.iam.admin.v1.CreateServiceAccountKey"),
    watch("google.iam.admin.v1.UploadServiceAccountKey"),
    watch("google.iam.admin.v1.EnableServiceAccountKey"),
];

const fn watch(method: &'static str) -> Watch {
    Watch {
        service: "iam.googleapis.com",
        method,
    }
}

fn target(project: &str, account: &str) -> Target {
    Target::new(
        KindId::SaKey,
        project,
        account,
        format!("projects/{project}/serviceAccounts/{account}"),
    )
}

/// `projects/P/serviceAccounts/ACCOUNT[/keys/ID]`, the project `-` standing for the event's own project (IAM logs
/// name the account by its unique id under `-`; the account's project is checked against it after the re-read).
fn parse(resource_name: &str, project: &str) -> Result<Target, names::NameError> {
    let parts: Vec<&str> = names::relative(resource_name).split('/').collect();
    let (named, account) = match parts.as_slice() {
        ["projects", named, "serviceAccounts", account]
        | ["projects", named, "serviceAccounts", account, "keys", _] => (*named, *account),
        _ => {
            return Err(format!(
                "'{}' is not a service account (projects/PROJECT/serviceAccounts/ACCOUNT)",
                names::printable(resource_name)
            ));
        }
    };
    let project = names::project(if named == "-" { project } else { named })?;
    Ok(target(project, names::service_account(account)?))
}

impl Kind for SaKeys {
    type Resource = AccountKeys;
    type Fix = Fix;
    const NAME: &'static str = "sa-key";
    const NOUN: &'static str = "service accounts' keys";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str = "^projects/[^/]+/serviceAccounts/[^/]+(/keys/[^/]+)?$";
    const INPUTS: &'static [&'static str] = &["sa-key"];
    type RawPolicy = config::RawSaKeyPolicy;
    type Policy = SaKeyPolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_sa_key(raw, problems)
    }

    fn common(config: &Config) -> Common {
        let policy = &config.policies.sa_key;
        Common {
            enabled: policy.enabled,
            dry_run: policy.dry_run,
            grace_secs: policy.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        if event.service_name != "iam.googleapis.com" {
            return None;
        }
        let method = event.method_name.as_str();
        let watched = WATCHES.iter().any(|watch| watch.method == method);
        let key_method =
            method.starts_with("google.iam.admin.v1.") && method.ends_with("ServiceAccountKey");
        if !key_method {
            return None;
        }
        let target = match parse(&event.resource_name, &event.project) {
            Ok(target) => target,
            Err(reason) => return Some(Route::Refuse(reason)),
        };
        Some(if watched {
            Route::Check(target)
        } else {
            Route::Ignore(format!("'{}' opens no key", names::printable(method)))
        })
    }

    fn target(resource_name: &str, project: &str) -> Option<Target> {
        parse(resource_name, project).ok()
    }

    fn permissions(config: &Config, enforcing: bool) -> Vec<&'static str> {
        let mut permissions = vec![
            "iam.serviceAccountKeys.list",
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.list",
        ];
        let deletes = config.policies.sa_key.delete_after_secs.is_some();
        if deletes {
            permissions.push("logging.logEntries.list");
        }
        if enforcing {
            permissions.push("iam.serviceAccountKeys.disable");
            if deletes {
                permissions.push("iam.serviceAccountKeys.delete");
            }
        }
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(AccountKeys, Value), gcp::Error> {
        let account = gcp
            .get_service_account(&target.project, &target.name)
            .await?;
        let (keys, raw_keys) = gcp.list_user_keys(&target.project, &account.email).await?;
        let raw = json!({"account": {"email": account.email, "uniqueId": account.unique_id,
            "projectId": account.project_id}, "keys": raw_keys["keys"]});
        Ok((
            AccountKeys {
                project: target.project.clone(),
                account,
                keys,
                expired: Vec::new(),
            },
            raw,
        ))
    }

    /// With `delete_after`: which disabled keys have stayed disabled that long, dated by the audit log.
    async fn enrich(
        config: &Config,
        gcp: &Client,
        read: &mut AccountKeys,
        now_secs: i64,
    ) -> Result<(), gcp::Error> {
        let Some(after) = config.policies.sa_key.delete_after_secs else {
            return Ok(());
        };
        let mut expired = Vec::new();
        for key in read
            .keys
            .iter()
            .filter(|key| key.key_type == "USER_MANAGED" && key.disabled)
        {
            if let Some(at) = gcp.key_disabled_at(&read.project, key.id()).await?
                && now_secs - at >= after
            {
                expired.push(key.id().to_string());
            }
        }
        read.expired = expired;
        Ok(())
    }

    fn evaluate(config: &Config, read: &AccountKeys) -> (Vec<Finding>, Option<Fix>) {
        let policy = &config.policies.sa_key;
        let (mut findings, ids) = policy.evaluate(&read.account, &read.keys);
        let (expired_findings, delete) = policy.evaluate_expired(&read.account, &read.expired);
        findings.extend(expired_findings);
        let fix = (!ids.is_empty() || !delete.is_empty()).then(|| Fix::DisableKeys {
            project: read.project.clone(),
            account: read.account.email.clone(),
            keys: ids,
            delete,
        });
        (findings, fix)
    }

    fn exemption(config: &Config, read: &AccountKeys, principal: &str) -> Option<String> {
        config.policies.sa_key.exemption(&read.account, principal)
    }

    fn target_of(read: &AccountKeys) -> Target {
        target(&read.project, &read.account.unique_id)
    }

    fn describe(fix: &Fix) -> String {
        let Fix::DisableKeys { keys, delete, .. } = fix;
        let mut steps = Vec::new();
        if !keys.is_empty() {
            steps.push(format!("disabled key {}", keys.join(", ")));
        }
        if !delete.is_empty() {
            steps.push(format!(
                "deleted key {} (it cannot be restored)",
                delete.join(", ")
            ));
        }
        steps.join("; ")
    }

    async fn apply(
        config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        let Fix::DisableKeys {
            project,
            account,
            keys,
            delete,
        } = fix;
        for key in keys {
            match gcp.set_key_enabled(project, account, key, false).await {
                Ok(()) | Err(gcp::Error::NotFound(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        for key in delete {
            match gcp.delete_key(project, account, key).await {
                Ok(()) | Err(gcp::Error::NotFound(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        let read = gcp.get_service_account(project, account).await?;
        let (after, raw) = gcp.list_user_keys(project, account).await?;
        if let Some(kept) = after
            .iter()
            .find(|key| delete.iter().any(|id| id == key.id()))
        {
            return Err(apply::Error::NotFixed(format!(
                "key {} of {account} still exists",
                kept.id()
            )));
        }
        let (_, still_open) = config.policies.sa_key.evaluate(&read, &after);
        if let Some(open) = still_open.iter().find(|id| keys.contains(id)) {
            return Err(apply::Error::NotFixed(format!(
                "key {open} of {account} is still enabled"
            )));
        }
        Ok(Some(
            json!({"account": {"email": read.email, "uniqueId": read.unique_id,
            "projectId": read.project_id}, "keys": raw["keys"]}),
        ))
    }

    async fn undo(
        gcp: &Client,
        fix: &Fix,
        _before: &Value,
        after: &Value,
        force: bool,
    ) -> Result<Restored, undo::Error> {
        let Fix::DisableKeys {
            project,
            account,
            keys,
            delete,
        } = fix;
        let read = gcp.get_service_account(project, account).await?;
        let resource = target(project, &read.unique_id).key().to_string();
        let (current, raw) = gcp.list_user_keys(project, account).await?;
        let state = |keys: &[Key]| {
            let mut state: Vec<(String, bool)> = keys
                .iter()
                .map(|key| (key.id().to_string(), key.disabled))
                .collect();
            state.sort();
            state
        };
        let recorded: Vec<Key> = serde_json::from_value(after["keys"].clone()).unwrap_or_default();
        if !force && state(&current) != state(&recorded) {
            return Err(undo::Error::Changed(resource));
        }
        for key in keys {
            if current.iter().any(|present| present.id() == key) {
                gcp.set_key_enabled(project, account, key, true).await?;
            }
        }
        let what = if delete.is_empty() {
            format!("key {} enabled again", keys.join(", "))
        } else {
            format!(
                "key {} enabled again; deleted key {} cannot be restored",
                keys.join(", "),
                delete.join(", ")
            )
        };
        Ok(Restored {
            resource,
            what,
            overwritten: raw,
        })
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<AccountKeys> {
        let mut swept = Swept {
            resources: Vec::new(),
            errors: Vec::new(),
        };
        let accounts = match gcp.list_service_accounts(project).await {
            Ok(accounts) => accounts,
            Err(err) => {
                swept
                    .errors
                    .push(format!("{project}: listing service accounts: {err}"));
                return swept;
            }
        };
        for account in accounts {
            match gcp.list_user_keys(project, &account.email).await {
                Ok((keys, _)) => swept.resources.push(AccountKeys {
                    project: project.to_string(),
                    account,
                    keys,
                    expired: Vec::new(),
                }),
                Err(err) => swept.errors.push(format!(
                    "{project}: listing the keys of {}: {err}",
                    account.email
                )),
            }
        }
        swept
    }

    fn console_url(target: &Target) -> String {
        format!(
            "https://console.cloud.google.com/iam-admin/serviceaccounts/details/{}/keys?project={}",
            target.name, target.project
        )
    }

    fn parse_input(_input: &str, text: &str) -> Result<AccountKeys, String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| format!("the input is not valid JSON: {err}"))?;
        let account: ServiceAccount = serde_json::from_value(value["account"].clone())
            .map_err(|err| format!("the input's \"account\" is not a service account: {err}"))?;
        if account.email.is_empty() {
            return Err(
                "the input must be {\"account\": {\"email\": …}, \"keys\": [IAM's keys]}".into(),
            );
        }
        let keys: Vec<Key> = match &value["keys"] {
            Value::Null => Vec::new(),
            keys => serde_json::from_value(keys.clone())
                .map_err(|err| format!("the input's \"keys\" are not IAM keys: {err}"))?,
        };
        Ok(AccountKeys {
            project: account.project_id.clone(),
            account,
            keys,
            expired: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests;
