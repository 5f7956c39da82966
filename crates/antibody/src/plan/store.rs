//! Where a deployment keeps its journal, how its image is built and when it sweeps: the parts of the gcloud script and
//! the Terraform that depend on them. Firestore is the default: the service scales to zero and loses nothing.

use super::{Deployment, STATE_SECRET, cloudsql_state_url, fill};

/// The Artifact Registry repository an image built from the repository goes to.
pub const REPOSITORY: &str = "antibody";

/// The journal of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// Firestore in Native mode (`(default)` unless named): serverless, shared, free at this volume.
    Firestore { database: String },
    /// A SQLite file in the one instance's memory: a replaced instance starts an empty journal.
    Sqlite,
    /// PostgreSQL on Cloud SQL (`PROJECT:REGION:INSTANCE`), shared by every instance; an always-on database.
    CloudSql(String),
}

impl Default for Store {
    fn default() -> Store {
        Store::Firestore {
            database: "(default)".into(),
        }
    }
}

/// The state URL the service is given for a Firestore journal.
pub fn firestore_state(project: &str, database: &str) -> String {
    match database {
        "(default)" => format!("firestore://{project}"),
        named => format!("firestore://{project}/{named}"),
    }
}

/// How long Cloud Scheduler waits for a sweep (its most for an HTTP target), and so how long the service lets a
/// request run: a sweep cut short by either would leave projects unswept.
pub const SWEEP_DEADLINE_SECS: u32 = 1800;

/// A Cloud Scheduler schedule for a sweep every `minutes`.
pub fn schedule(minutes: u32) -> String {
    match minutes {
        0..60 => format!("*/{} * * * *", minutes.max(1)),
        _ => format!("0 */{} * * *", (minutes / 60).clamp(1, 23)),
    }
}

/// The gcloud parts of a deployment's journal.
pub(super) struct GcloudStore {
    /// APIs the journal needs.
    pub apis: Vec<&'static str>,
    /// The block that makes the journal.
    pub journal: String,
    /// `,NAME=VALUE` pairs for the service's environment.
    pub env: String,
    /// `NAME=SECRET:VERSION` (or `PATH=SECRET:VERSION`) for `--set-secrets`.
    pub secrets: Vec<String>,
    /// More deploy flags.
    pub flags: String,
}

/// The gcloud parts: APIs to enable, the journal's block, the service's extra environment, secrets and flags.
pub(super) fn gcloud_store(deployment: &Deployment) -> GcloudStore {
    let project = &deployment.project;
    let mut store = match &deployment.store {
        Store::Firestore { database } => GcloudStore {
            apis: vec!["firestore.googleapis.com"],
            env: format!(",ANTIBODY_STATE={}", firestore_state(project, database)),
            journal: fill(
                include_str!("templates/gcloud-firestore.sh"),
                &[
                    ("database", database),
                    ("region", &deployment.region),
                    ("days", &crate::journal::DEFAULT_RETENTION_DAYS.to_string()),
                    (
                        "collections",
                        &crate::journal::FIRESTORE_TTL_COLLECTIONS.join(" "),
                    ),
                ],
            ),
            secrets: Vec::new(),
            flags: " \\\n  --min-instances 0".to_string(),
        },
        Store::CloudSql(instance) => GcloudStore {
            apis: vec!["sqladmin.googleapis.com", "secretmanager.googleapis.com"],
            env: String::new(),
            journal: format!(
                r#"# The journal: PostgreSQL on Cloud SQL ({instance}), shared by every instance of the service.
# Its URL, password included, is the secret {STATE_SECRET}: {url}
gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$SA" \
  --role roles/cloudsql.client --condition None >/dev/null
gcloud secrets add-iam-policy-binding {STATE_SECRET} --project "$PROJECT" --member "serviceAccount:$SA" \
  --role roles/secretmanager.secretAccessor >/dev/null
"#,
                url = cloudsql_state_url(instance)
            ),
            secrets: vec![format!("ANTIBODY_STATE={STATE_SECRET}:latest")],
            flags: format!(" \\\n  --min-instances 0 --add-cloudsql-instances \"{instance}\""),
        },
        Store::Sqlite => GcloudStore {
            apis: Vec::new(),
            env: String::new(),
            journal: "# The journal: a SQLite file in the instance's memory (Cloud Run's filesystem), so one instance, always on; a\n\
                      # replaced instance starts a new journal. The default, Firestore, shares a journal that outlives instances.\n"
                .to_string(),
            secrets: Vec::new(),
            flags: " \\\n  --min-instances 1 --max-instances 1".to_string(),
        },
    };
    if deployment.image.is_none() {
        store.apis.extend([
            "cloudbuild.googleapis.com",
            "artifactregistry.googleapis.com",
        ]);
    }
    if deployment.config_file.is_some() {
        store.apis.push("secretmanager.googleapis.com");
        store
            .env
            .push_str(&format!(",ANTIBODY_CONFIG={CONFIG_PATH}"));
        store
            .secrets
            .push(format!("{CONFIG_PATH}={CONFIG_SECRET}:latest"));
    }
    if deployment.sweep.is_some() {
        store.env.push_str(",ANTIBODY_SWEEP_MINUTES=0");
    }
    store
}

/// The secret holding the configuration the deployment was planned from, and where the service finds it.
pub const CONFIG_SECRET: &str = "antibody-config";
pub const CONFIG_PATH: &str = "/etc/antibody/antibody.toml";

/// The block that puts the configuration file into its secret, if the plan was made from one.
pub(super) fn gcloud_config(deployment: &Deployment) -> String {
    match &deployment.config_file {
        Some(file) => fill(
            include_str!("templates/gcloud-config.sh"),
            &[
                ("CONFIG_SECRET", CONFIG_SECRET),
                ("CONFIG_PATH", CONFIG_PATH),
                ("file", file),
            ],
        ),
        None => String::new(),
    }
}

/// The image block: the one given, or a Cloud Build of the repository.
pub(super) fn gcloud_image(deployment: &Deployment) -> String {
    match &deployment.image {
        Some(image) => format!("IMAGE=\"{image}\""),
        None => fill(
            include_str!("templates/gcloud-image.sh"),
            &[("REPOSITORY", REPOSITORY)],
        ),
    }
}

/// The Cloud Scheduler job that calls `/sweep`, if the configuration sweeps.
pub(super) fn gcloud_sweep(deployment: &Deployment) -> String {
    match &deployment.sweep {
        Some((projects, minutes)) => fill(
            include_str!("templates/gcloud-sweep.sh"),
            &[
                ("projects", &projects.join(", ")),
                ("schedule", &schedule(*minutes)),
                ("deadline", &SWEEP_DEADLINE_SECS.to_string()),
                ("SERVICE", super::SERVICE),
            ],
        ),
        None => String::new(),
    }
}

/// The Terraform parts: the service's scaling, its journal's environment, volumes and mounts, and the resources.
pub(super) struct TerraformStore {
    pub scaling: String,
    pub volumes: String,
    pub mounts: String,
    pub env: String,
    pub journal: String,
    /// What the service waits for besides the APIs (a revision that cannot read its journal does not start).
    pub depends: Vec<&'static str>,
}

pub(super) fn terraform_store(deployment: &Deployment) -> TerraformStore {
    let project = &deployment.project;
    let days = crate::journal::DEFAULT_RETENTION_DAYS.to_string();
    let mut store = match &deployment.store {
        Store::Firestore { database } => {
            let mut journal = fill(
                include_str!("templates/terraform-firestore.tf"),
                &[
                    ("database", database),
                    ("project", project),
                    ("region", &deployment.region),
                ],
            );
            for collection in crate::journal::FIRESTORE_TTL_COLLECTIONS {
                journal.push_str(&fill(
                    include_str!("templates/terraform-firestore-ttl.tf"),
                    &[
                        ("collection", collection),
                        ("project", project),
                        ("days", &days),
                    ],
                ));
            }
            TerraformStore {
                scaling: "\n      min_instance_count = 0".into(),
                volumes: String::new(),
                mounts: String::new(),
                env: format!(
                    "\n      env {{\n        name  = \"ANTIBODY_STATE\"\n        value = \"{}\"\n      }}",
                    firestore_state(project, database)
                ),
                journal,
                depends: vec!["google_project_iam_member.antibody_datastore_user"],
            }
        }
        Store::CloudSql(instance) => TerraformStore {
            scaling: "\n      min_instance_count = 0".into(),
            volumes: fill(
                include_str!("templates/terraform-cloudsql-volume.tf"),
                &[("instance", instance)],
            ),
            mounts: r#"
      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }"#
            .into(),
            env: fill(
                include_str!("templates/terraform-cloudsql-env.tf"),
                &[("STATE_SECRET", STATE_SECRET)],
            ),
            journal: fill(
                include_str!("templates/terraform-cloudsql.tf"),
                &[
                    ("instance", instance),
                    ("STATE_SECRET", STATE_SECRET),
                    ("url", &cloudsql_state_url(instance)),
                    ("project", project),
                ],
            ),
            depends: vec!["google_secret_manager_secret_iam_member.antibody_state"],
        },
        Store::Sqlite => TerraformStore {
            scaling: "\n      # The journal is a SQLite file in the instance's memory: one instance, always on.\n      \
                      min_instance_count = 1\n      max_instance_count = 1"
                .into(),
            volumes: String::new(),
            mounts: String::new(),
            env: String::new(),
            journal: String::new(),
            depends: Vec::new(),
        },
    };
    if let Some(file) = &deployment.config_file {
        store.volumes.push_str(
            r#"
    volumes {
      name = "config"
      secret {
        secret = google_secret_manager_secret.antibody_config.secret_id
        items {
          version = google_secret_manager_secret_version.antibody_config.version
          path    = "antibody.toml"
        }
      }
    }"#,
        );
        store.mounts.push_str(
            r#"
      volume_mounts {
        name       = "config"
        mount_path = "/etc/antibody"
      }"#,
        );
        store.env.push_str(&format!(
            "\n      env {{\n        name  = \"ANTIBODY_CONFIG\"\n        value = \"{CONFIG_PATH}\"\n      }}"
        ));
        store.journal.push_str(&fill(
            include_str!("templates/terraform-config.tf"),
            &[
                ("CONFIG_SECRET", CONFIG_SECRET),
                ("CONFIG_PATH", CONFIG_PATH),
                ("project", project),
                ("file", &file.replace('\\', "\\\\").replace('"', "\\\"")),
            ],
        ));
        store
            .depends
            .push("google_secret_manager_secret_iam_member.antibody_config");
    }
    if let Some((projects, minutes)) = &deployment.sweep {
        store.env.push_str(
            "\n      env {\n        name  = \"ANTIBODY_SWEEP_MINUTES\"\n        value = \"0\"\n      }",
        );
        store.journal.push_str(&fill(
            include_str!("templates/terraform-sweep.tf"),
            &[
                ("projects", &projects.join(", ")),
                ("schedule", &schedule(*minutes)),
                ("deadline", &SWEEP_DEADLINE_SECS.to_string()),
                ("project", project),
                ("region", &deployment.region),
            ],
        ));
    }
    if deployment.image.is_none() {
        store.depends.push("terraform_data.image");
    }
    store
}

/// The Terraform image: the one given, or the one the same apply builds into the repository it creates.
pub(super) fn terraform_image(deployment: &Deployment) -> (String, String) {
    match &deployment.image {
        Some(image) => (format!("\"{image}\""), String::new()),
        None => (
            "local.image".into(),
            fill(
                include_str!("templates/terraform-image.tf"),
                &[
                    ("REPOSITORY", REPOSITORY),
                    ("project", &deployment.project),
                    ("region", &deployment.region),
                ],
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_the_sweep_interval() {
        assert_eq!(schedule(15), "*/15 * * * *");
        assert_eq!(schedule(0), "*/1 * * * *");
        assert_eq!(schedule(120), "0 */2 * * *");
        assert_eq!(firestore_state("p", "(default)"), "firestore://p");
        assert_eq!(firestore_state("p", "journal"), "firestore://p/journal");
    }
}
