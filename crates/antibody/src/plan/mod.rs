//! `antibody plan`: the deployment, derived from the enabled kinds so that triggers can never disagree with what the
//! engine handles — a service account, a custom role with exactly the permissions the enabled fixes need, Cloud Run,
//! and one Eventarc trigger per watched (serviceName, methodName) — rendered from the files in `templates/`.

mod store;

use std::collections::BTreeSet;

pub use store::{
    CONFIG_PATH, CONFIG_SECRET, REPOSITORY, SWEEP_DEADLINE_SECS, Store, firestore_state, schedule,
};

use crate::config::Config;
use crate::kinds;

pub const SERVICE: &str = "antibody";
pub const ACCOUNT: &str = "antibody";
pub const ROLE: &str = "antibodyRemediator";

/// One Eventarc audit-log trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub name: String,
    pub service_name: &'static str,
    pub method_name: &'static str,
}

/// Everything a deployment consists of.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub project: String,
    pub region: String,
    /// The image to deploy; `None` builds it from the repository (Cloud Build into Artifact Registry).
    pub image: Option<String>,
    pub permissions: BTreeSet<&'static str>,
    pub triggers: Vec<Trigger>,
    /// Where the journal lives (Firestore unless told otherwise).
    pub store: Store,
    /// The projects swept on a schedule and the minutes between sweeps, from `serve.sweep_projects`: Cloud Scheduler
    /// calls `/sweep`, so that sweeps happen at zero instances too.
    pub sweep: Option<(Vec<String>, u32)>,
    /// An organization's numeric ID: the role is granted there, and an aggregated organization sink delivers every
    /// project's audit entries through Pub/Sub instead of this project's Eventarc triggers.
    pub organization: Option<String>,
    /// The filter of a log sink delivering to this deployment (`sink_filter`), its own account left out.
    pub sink_filter: String,
    /// The configuration file the plan was made from: the deployment puts it into a secret the service reads.
    pub config_file: Option<String>,
}

impl Deployment {
    pub fn service_account(&self) -> String {
        format!("{ACCOUNT}@{}.iam.gserviceaccount.com", self.project)
    }

    /// The Eventarc triggers this deployment makes: one per watched method a project's audit log can carry; none for
    /// an organization, whose sink carries every entry.
    pub fn project_triggers(&self) -> &[Trigger] {
        match self.organization {
            Some(_) => &[],
            None => &self.triggers,
        }
    }

    /// Every API the deployment calls or the service needs, in the order they are enabled.
    pub fn apis(&self) -> Vec<&'static str> {
        let mut apis = vec![
            "run.googleapis.com",
            "iam.googleapis.com",
            "cloudresourcemanager.googleapis.com",
            "logging.googleapis.com",
            "pubsub.googleapis.com",
            "cloudscheduler.googleapis.com",
        ];
        if self.organization.is_none() {
            apis.push("eventarc.googleapis.com");
        }
        for api in store::gcloud_store(self).apis {
            if !apis.contains(&api) {
                apis.push(api);
            }
        }
        apis
    }

    /// The custom role's permissions. An organization deployment also watches the organization's and folders'
    /// own policies, with the same reads and writes as a project's (a project-level role may not hold these).
    pub fn role_permissions(&self) -> BTreeSet<&'static str> {
        let mut permissions = self.permissions.clone();
        if self.organization.is_some() {
            // Placing a project or folder in `[scope]` and walking the organization (`scan --organization`).
            permissions.extend([
                "resourcemanager.projects.get",
                "resourcemanager.folders.get",
                "resourcemanager.folders.list",
            ]);
            for (project, containers) in [
                (
                    "resourcemanager.projects.getIamPolicy",
                    [
                        "resourcemanager.organizations.getIamPolicy",
                        "resourcemanager.folders.getIamPolicy",
                    ],
                ),
                (
                    "resourcemanager.projects.setIamPolicy",
                    [
                        "resourcemanager.organizations.setIamPolicy",
                        "resourcemanager.folders.setIamPolicy",
                    ],
                ),
            ] {
                if self.permissions.contains(project) {
                    permissions.extend(containers);
                }
            }
        }
        permissions
    }
}

/// A trigger per watched method, named after it; a bare method name (`SetIamPolicy`, which Resource Manager and Cloud
/// KMS both log), or one another service's trigger already carries (`shared`), is prefixed with its service's name
/// so that every trigger's name is its own.
fn trigger(service_name: &'static str, method_name: &'static str, shared: bool) -> Trigger {
    let qualified = if method_name.contains('.') && !shared {
        method_name.to_string()
    } else {
        let service = service_name.split('.').next().unwrap_or(service_name);
        format!("{service}-{method_name}")
    };
    let slug: String = qualified
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name: String = format!("antibody-{slug}").chars().take(63).collect();
    Trigger {
        name: name.trim_end_matches('-').to_string(),
        service_name,
        method_name,
    }
}

/// The deployment for the enabled kinds, from the registry. A kind in dry-run needs only the permissions to read.
pub fn deployment(config: &Config, project: &str, region: &str, image: &str) -> Deployment {
    let mut permissions = kinds::permissions(config);
    if config.scope.needs_ancestry() || config.scope.has_project_globs() {
        // `[scope]` by organization or folder reads each project's ancestry; by project globs, the id of a project
        // an entry names by its number.
        permissions.insert("resourcemanager.projects.get");
    }
    // A method name several services log (IAM's generic `SetIamPolicy`) names its first trigger alone; later ones
    // carry their service's name too, so that every trigger's name is its own.
    let mut named: Vec<&str> = Vec::new();
    let triggers = kinds::watches(config)
        .into_iter()
        .filter(|watch| !watch.above_projects())
        .map(|watch| {
            let shared = named.contains(&watch.method);
            named.push(watch.method);
            trigger(watch.service, watch.method, shared)
        })
        .collect();
    let mut identities = vec![format!("{ACCOUNT}@{project}.iam.gserviceaccount.com")];
    for identity in &config.identities {
        if !identities.contains(identity) {
            identities.push(identity.clone());
        }
    }
    Deployment {
        sink_filter: sink_filter(config, &identities),
        project: project.into(),
        region: region.into(),
        image: Some(image.into()),
        permissions,
        triggers,
        store: Store::default(),
        sweep: (!config.sweep_projects.is_empty() && config.sweep_minutes > 0)
            .then(|| (config.sweep_projects.clone(), config.sweep_minutes)),
        organization: None,
        config_file: None,
    }
}

/// Cloud Logging refuses a sink filter longer than this.
pub const SINK_FILTER_LIMIT: usize = 20_000;

/// The filter of an organization's log sink for the enabled kinds: Admin Activity audit entries of the watched
/// (serviceName, methodName) pairs on resource names of the kind's shape, except those written by `identities`
/// (antibody's own fixes, which the loop guard would only drop). Method names are paired with their service and
/// kind: another API's `SetIamPolicy`, or an organization's, is not watched.
pub fn sink_filter(config: &Config, identities: &[String]) -> String {
    let alternatives: Vec<String> = kinds::KindId::ALL
        .iter()
        .filter(|kind| kind.common(config).enabled)
        .flat_map(|kind| {
            let mut by_service: Vec<(&str, Vec<&str>)> = Vec::new();
            for watch in kind.watches() {
                match by_service
                    .iter_mut()
                    .find(|(service, _)| *service == watch.service)
                {
                    Some((_, methods)) => methods.push(watch.method),
                    None => by_service.push((watch.service, vec![watch.method])),
                }
            }
            by_service.into_iter().map(move |(service, methods)| {
                let methods: Vec<String> = methods
                    .iter()
                    .map(|method| format!("protoPayload.methodName={}", quoted(method)))
                    .collect();
                format!(
                    "(protoPayload.serviceName={} AND ({}) AND protoPayload.resourceName=~{})",
                    quoted(service),
                    methods.join(" OR "),
                    quoted(kind.resource_pattern())
                )
            })
        })
        .collect();
    let mut filter = format!(
        "log_id(\"cloudaudit.googleapis.com/activity\")\nAND ({})",
        if alternatives.is_empty() {
            // No kind is enabled: a filter that selects nothing rather than everything.
            "protoPayload.methodName=\"\"".to_string()
        } else {
            alternatives.join("\n  OR ")
        }
    );
    for identity in identities {
        filter.push_str(&format!(
            "\nAND NOT protoPayload.authenticationInfo.principalEmail={}",
            quoted(identity)
        ));
    }
    filter
}

/// A string in Logging's query language: quoted, with `\` and `"` escaped.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The Pub/Sub topic an organization sink writes to (its subscription and dead-letter topic are named after it).
pub const TOPIC: &str = "antibody-audit";

/// How many times Pub/Sub pushes a message before it goes to the dead-letter topic.
pub const MAX_DELIVERY_ATTEMPTS: &str = "10";

/// Reads `--organization`: `organizations/ID` or the bare numeric ID.
pub fn organization_id(text: &str) -> Result<String, String> {
    let id = text.strip_prefix("organizations/").unwrap_or(text);
    if kinds::names::organization_or_folder(&format!("organizations/{id}")).is_none() {
        return Err(format!(
            "'{}' is not an organization: expected organizations/ID or its numeric ID",
            text.escape_debug()
        ));
    }
    Ok(id.to_string())
}

/// Reads `--cloudsql`: an instance connection name, `PROJECT:REGION:INSTANCE`.
pub fn cloudsql_instance(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [project, region, instance]
            if [project, region, instance].iter().all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
            }) =>
        {
            Ok(text.to_string())
        }
        _ => Err(format!(
            "{text:?} is not an instance connection name (PROJECT:REGION:INSTANCE, as `gcloud sql instances describe` shows it)"
        )),
    }
}

/// The Secret Manager secret that holds the PostgreSQL journal's URL (its password included).
pub const STATE_SECRET: &str = "antibody-state";

/// The journal's URL on Cloud Run for a Cloud SQL instance: its Unix socket, which the platform mounts under
/// `/cloudsql/` (the password is the operator's to fill in).
pub fn cloudsql_state_url(instance: &str) -> String {
    format!("postgres://antibody:PASSWORD@/antibody?host=/cloudsql/{instance}")
}

/// Renders a template from `templates/`: each `{{name}}` becomes its value. Templates are files, so that shell and
/// Terraform braces need no escaping.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (name, value)| {
            text.replace(&format!("{{{{{name}}}}}"), value)
        })
}

/// An idempotent shell script of `gcloud` commands: safe to run again after a change of policies.
pub fn gcloud(deployment: &Deployment) -> String {
    let Deployment {
        project, region, ..
    } = deployment;
    let account = deployment.service_account();
    let permissions = deployment
        .role_permissions()
        .into_iter()
        .collect::<Vec<_>>()
        .join(",");
    let store = store::gcloud_store(deployment);
    let role = match &deployment.organization {
        Some(organization) => fill(
            include_str!("templates/gcloud-role-organization.sh"),
            &[("organization", organization)],
        ),
        None => include_str!("templates/gcloud-role-project.sh").to_string(),
    };
    let delivery = match &deployment.organization {
        Some(organization) => fill(
            include_str!("templates/gcloud-organization-sink.sh"),
            &[
                ("organization", organization),
                ("TOPIC", TOPIC),
                ("attempts", MAX_DELIVERY_ATTEMPTS),
                ("filter", &deployment.sink_filter),
            ],
        ),
        None => include_str!("templates/gcloud-eventarc.sh").to_string(),
    };
    let mut flags = store.flags.clone();
    if !store.secrets.is_empty() {
        flags.push_str(&format!(
            " \\\n  --set-secrets \"{}\"",
            store.secrets.join(",")
        ));
    }
    let mut script = fill(
        include_str!("templates/gcloud.sh"),
        &[
            ("role", &role),
            ("project", project),
            ("region", region),
            ("account", &account),
            ("apis", &deployment.apis().join(" ")),
            ("ACCOUNT", ACCOUNT),
            ("ROLE", ROLE),
            ("permissions", &permissions),
            ("journal", &store.journal),
            ("config", &store::gcloud_config(deployment)),
            ("SERVICE", SERVICE),
            ("image", &store::gcloud_image(deployment)),
            ("timeout", &SWEEP_DEADLINE_SECS.to_string()),
            ("state_env", &store.env),
            ("journal_flags", &flags),
            ("sweep", &store::gcloud_sweep(deployment)),
            // Last: the sink filter inside it is data, never a template.
            ("delivery", &delivery),
        ],
    );
    for trigger in deployment.project_triggers() {
        script.push_str(&fill(
            include_str!("templates/gcloud-trigger.sh"),
            &[
                ("name", &trigger.name),
                ("SERVICE", SERVICE),
                ("service", trigger.service_name),
                ("method", trigger.method_name),
            ],
        ));
    }
    script
}

/// The same deployment as Terraform (google provider).
pub fn terraform(deployment: &Deployment) -> String {
    let Deployment {
        project, region, ..
    } = deployment;
    let permissions = deployment
        .role_permissions()
        .iter()
        .map(|permission| format!("    \"{permission}\",\n"))
        .collect::<String>();
    let role = match &deployment.organization {
        Some(organization) => fill(
            include_str!("templates/terraform-organization.tf"),
            &[
                ("organization", organization),
                ("project", project),
                ("ROLE", ROLE),
                ("permissions", &permissions),
                ("TOPIC", TOPIC),
                ("attempts", MAX_DELIVERY_ATTEMPTS),
                // Last: the filter is data, never a template; in a heredoc only `${` and `%{` are special.
                (
                    "filter",
                    &deployment
                        .sink_filter
                        .replace("${", "$${")
                        .replace("%{", "%%{"),
                ),
            ],
        ),
        None => fill(
            include_str!("templates/terraform-role-project.tf"),
            &[
                ("project", project),
                ("ROLE", ROLE),
                ("permissions", &permissions),
            ],
        ),
    };
    let store = store::terraform_store(deployment);
    let (image, image_build) = store::terraform_image(deployment);
    let mut depends = vec!["google_project_service.antibody"];
    depends.extend(&store.depends);
    let apis = deployment
        .apis()
        .iter()
        .map(|api| format!("\"{api}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut hcl = fill(
        include_str!("templates/terraform.tf"),
        &[
            ("project", project),
            ("ACCOUNT", ACCOUNT),
            ("SERVICE", SERVICE),
            ("region", region),
            ("apis", &apis),
            (
                "depends",
                &format!("\n  depends_on          = [{}]", depends.join(", ")),
            ),
            ("timeout", &SWEEP_DEADLINE_SECS.to_string()),
            ("scaling", &store.scaling),
            ("volumes", &store.volumes),
            ("image_build", &image_build),
            ("image", &image),
            ("mounts", &store.mounts),
            ("state_env", &store.env),
            ("journal", &store.journal),
            ("sweep", ""),
            // Last: what it brings in is filled already.
            ("role", &role),
        ],
    );
    for trigger in deployment.project_triggers() {
        let resource = trigger.name.replace('-', "_");
        hcl.push_str(&fill(
            include_str!("templates/terraform-trigger.tf"),
            &[
                ("resource", &resource),
                ("project", project),
                ("name", &trigger.name),
                ("service", trigger.service_name),
                ("method", trigger.method_name),
                ("region", region),
            ],
        ));
    }
    hcl
}
