//! `antibody plan`: the deployment, derived from the enabled policies so that triggers can never disagree with what the
//! engine handles — a service account, a custom role with exactly the permissions the enabled fixes need, Cloud Run,
//! and one Eventarc trigger per watched (serviceName, methodName).

use std::collections::BTreeSet;

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
    pub image: String,
    pub permissions: BTreeSet<&'static str>,
    pub triggers: Vec<Trigger>,
    /// The Cloud SQL instance (`PROJECT:REGION:INSTANCE`) holding a PostgreSQL journal shared by every instance of
    /// the service; without one the journal is a SQLite file in the single instance's memory.
    pub cloudsql: Option<String>,
}

impl Deployment {
    pub fn service_account(&self) -> String {
        format!("{ACCOUNT}@{}.iam.gserviceaccount.com", self.project)
    }
}

fn trigger(service_name: &'static str, method_name: &'static str) -> Trigger {
    let slug: String = method_name
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
    let permissions = kinds::permissions(config);
    let triggers = kinds::watches(config)
        .into_iter()
        .map(|watch| trigger(watch.service, watch.method))
        .collect();
    Deployment {
        project: project.into(),
        region: region.into(),
        image: image.into(),
        permissions,
        triggers,
        cloudsql: None,
    }
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

/// An idempotent shell script of `gcloud` commands: safe to run again after a change of policies.
pub fn gcloud(deployment: &Deployment) -> String {
    let Deployment {
        project,
        region,
        image,
        ..
    } = deployment;
    let account = deployment.service_account();
    let permissions = deployment
        .permissions
        .iter()
        .copied()
        .collect::<Vec<_>>()
        .join(",");
    let (apis, journal, journal_flags) = match &deployment.cloudsql {
        Some(instance) => (
            " sqladmin.googleapis.com secretmanager.googleapis.com",
            format!(
                r#"# The journal: PostgreSQL on Cloud SQL ({instance}), shared by every instance of the service.
# Its URL, password included, is the secret {STATE_SECRET}: {url}
gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$SA" \
  --role roles/cloudsql.client --condition None >/dev/null
gcloud secrets add-iam-policy-binding {STATE_SECRET} --project "$PROJECT" --member "serviceAccount:$SA" \
  --role roles/secretmanager.secretAccessor >/dev/null
"#,
                url = cloudsql_state_url(instance)
            ),
            format!(
                " \\\n  --add-cloudsql-instances \"{instance}\" --set-secrets \"ANTIBODY_STATE={STATE_SECRET}:latest\""
            ),
        ),
        None => (
            "",
            "# The journal: a SQLite file in the instance's memory (Cloud Run's filesystem), so one instance only; a new\n\
             # instance starts a new journal. `antibody plan --cloudsql PROJECT:REGION:INSTANCE` shares a PostgreSQL\n\
             # journal that outlives instances instead."
                .to_string(),
            " --max-instances 1".to_string(),
        ),
    };
    let mut script = format!(
        r#"#!/usr/bin/env bash
# antibody deployment for project {project}, generated by `antibody plan` from the enabled policies.
set -euo pipefail
PROJECT={project}
REGION={region}
SA={account}

gcloud services enable run.googleapis.com eventarc.googleapis.com{apis} --project "$PROJECT"

gcloud iam service-accounts describe "$SA" --project "$PROJECT" >/dev/null 2>&1 ||
  gcloud iam service-accounts create {ACCOUNT} --project "$PROJECT" --display-name "antibody remediation"

# Exactly the permissions the enabled fixes need.
if gcloud iam roles describe {ROLE} --project "$PROJECT" >/dev/null 2>&1; then
  gcloud iam roles update {ROLE} --project "$PROJECT" --permissions "{permissions}" --quiet
else
  gcloud iam roles create {ROLE} --project "$PROJECT" --title "antibody remediator" --permissions "{permissions}"
fi
gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$SA" \
  --role "projects/$PROJECT/roles/{ROLE}" --condition None >/dev/null

{journal}
gcloud run deploy {SERVICE} --project "$PROJECT" --region "$REGION" --image "{image}" \
  --service-account "$SA" --no-allow-unauthenticated --ingress internal --memory 256Mi --concurrency 80 \
  --min-instances 1 --set-env-vars "ANTIBODY_IDENTITY=$SA"{journal_flags}

# Pushes are verified: their OIDC token must name the service URL and this account.
URL=$(gcloud run services describe {SERVICE} --project "$PROJECT" --region "$REGION" --format 'value(status.url)')
gcloud run services update {SERVICE} --project "$PROJECT" --region "$REGION" \
  --update-env-vars "ANTIBODY_PUSH_AUDIENCE=$URL,ANTIBODY_PUSH_EMAILS=$SA"

# Eventarc delivers with the same account; it may invoke the service and nothing else.
gcloud run services add-iam-policy-binding {SERVICE} --project "$PROJECT" --region "$REGION" \
  --member "serviceAccount:$SA" --role roles/run.invoker >/dev/null
gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$SA" \
  --role roles/eventarc.eventReceiver --condition None >/dev/null

# One trigger per (serviceName, methodName): Eventarc matches method names exactly.
"#
    );
    for trigger in &deployment.triggers {
        script.push_str(&format!(
            r#"gcloud eventarc triggers describe {name} --project "$PROJECT" --location global >/dev/null 2>&1 ||
  gcloud eventarc triggers create {name} --project "$PROJECT" --location global \
    --destination-run-service {SERVICE} --destination-run-region "$REGION" \
    --event-filters type=google.cloud.audit.log.v1.written \
    --event-filters serviceName={service} --event-filters methodName={method} \
    --service-account "$SA"
"#,
            name = trigger.name,
            service = trigger.service_name,
            method = trigger.method_name,
        ));
    }
    script
}

/// The same deployment as Terraform (google provider).
pub fn terraform(deployment: &Deployment) -> String {
    let Deployment {
        project,
        region,
        image,
        ..
    } = deployment;
    let permissions = deployment
        .permissions
        .iter()
        .map(|permission| format!("    \"{permission}\",\n"))
        .collect::<String>();
    let depends = match deployment.cloudsql {
        // A revision that cannot read its secret does not start.
        Some(_) => "\n\n  depends_on = [google_secret_manager_secret_iam_member.antibody_state]",
        None => "",
    };
    let (max_instances, volumes, mounts, state_env, journal) = match &deployment.cloudsql {
        Some(instance) => (
            "",
            format!(
                r#"
    volumes {{
      name = "cloudsql"
      cloud_sql_instance {{
        instances = ["{instance}"]
      }}
    }}"#
            ),
            r#"
      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }"#,
            format!(
                r#"
      env {{
        name = "ANTIBODY_STATE"
        value_source {{
          secret_key_ref {{
            secret  = "{STATE_SECRET}"
            version = "latest"
          }}
        }}
      }}"#
            ),
            format!(
                r#"
# The journal: PostgreSQL on Cloud SQL ({instance}), shared by every instance of the service.
# Its URL, password included, is the secret {STATE_SECRET}: {url}
resource "google_project_iam_member" "antibody_cloudsql_client" {{
  project = "{project}"
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${{google_service_account.antibody.email}}"
}}

resource "google_secret_manager_secret_iam_member" "antibody_state" {{
  project   = "{project}"
  secret_id = "{STATE_SECRET}"
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${{google_service_account.antibody.email}}"
}}
"#,
                url = cloudsql_state_url(instance)
            ),
        ),
        None => (
            "\n      # The journal is a SQLite file in the instance's memory: one instance (see `antibody plan --cloudsql`).\n      \
             max_instance_count = 1",
            String::new(),
            "",
            String::new(),
            String::new(),
        ),
    };
    let mut hcl = format!(
        r#"# antibody deployment for project {project}, generated by `antibody plan --format terraform`.

variable "push_audience" {{
  description = "The service URL that push tokens must name (the Cloud Run URL, known after the first apply)"
  type        = string
}}

resource "google_service_account" "antibody" {{
  project      = "{project}"
  account_id   = "{ACCOUNT}"
  display_name = "antibody remediation"
}}

resource "google_project_iam_custom_role" "antibody" {{
  project     = "{project}"
  role_id     = "{ROLE}"
  title       = "antibody remediator"
  permissions = [
{permissions}  ]
}}

resource "google_project_iam_member" "antibody_role" {{
  project = "{project}"
  role    = google_project_iam_custom_role.antibody.name
  member  = "serviceAccount:${{google_service_account.antibody.email}}"
}}

resource "google_project_iam_member" "antibody_event_receiver" {{
  project = "{project}"
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${{google_service_account.antibody.email}}"
}}

resource "google_cloud_run_v2_service" "antibody" {{
  project  = "{project}"
  name     = "{SERVICE}"
  location = "{region}"
  ingress  = "INGRESS_TRAFFIC_INTERNAL_ONLY"{depends}

  template {{
    service_account                  = google_service_account.antibody.email
    max_instance_request_concurrency = 80
    scaling {{
      min_instance_count = 1{max_instances}
    }}{volumes}
    containers {{
      image = "{image}"{mounts}
      resources {{
        limits = {{
          memory = "256Mi"
        }}
      }}
      env {{
        name  = "ANTIBODY_IDENTITY"
        value = google_service_account.antibody.email
      }}
      env {{
        name  = "ANTIBODY_PUSH_EMAILS"
        value = google_service_account.antibody.email
      }}
      env {{
        name  = "ANTIBODY_PUSH_AUDIENCE"
        value = var.push_audience
      }}{state_env}
    }}
  }}
}}

resource "google_cloud_run_v2_service_iam_member" "antibody_invoker" {{
  project  = "{project}"
  location = "{region}"
  name     = google_cloud_run_v2_service.antibody.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${{google_service_account.antibody.email}}"
}}
{journal}"#
    );
    for trigger in &deployment.triggers {
        let resource = trigger.name.replace('-', "_");
        hcl.push_str(&format!(
            r#"
resource "google_eventarc_trigger" "{resource}" {{
  project         = "{project}"
  name            = "{name}"
  location        = "global"
  service_account = google_service_account.antibody.email

  matching_criteria {{
    attribute = "type"
    value     = "google.cloud.audit.log.v1.written"
  }}
  matching_criteria {{
    attribute = "serviceName"
    value     = "{service}"
  }}
  matching_criteria {{
    attribute = "methodName"
    value     = "{method}"
  }}

  destination {{
    cloud_run_service {{
      service = google_cloud_run_v2_service.antibody.name
      region  = "{region}"
    }}
  }}
}}
"#,
            name = trigger.name,
            service = trigger.service_name,
            method = trigger.method_name,
        ));
    }
    hcl
}
