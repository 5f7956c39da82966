//! The two outputs of `plan` describe one deployment: every variant's Terraform is `terraform fmt`-clean, and the
//! gcloud script and the Terraform enable the same APIs and give the service the same environment, billing,
//! timeout, schedules and triggers.

use std::collections::BTreeSet;

use antibody::config::Config;
use antibody::plan;

use crate::plan::{assert_bash_parses, deployed_environment};

/// Every variant of the deployment a user can ask for, each as gcloud and Terraform render it.
fn variants() -> Vec<(&'static str, plan::Deployment)> {
    let config = Config {
        sweep_projects: vec!["acme-prod".into()],
        sweep_minutes: 30,
        ..Config::default()
    };
    let base = plan::deployment(&config, "acme-prod", "europe-west1", "image");
    let mut variants = vec![("default", base.clone())];
    let mut built = base.clone();
    built.image = None;
    variants.push(("built", built));
    let mut sqlite = base.clone();
    sqlite.store = plan::Store::Sqlite;
    variants.push(("sqlite", sqlite));
    let mut cloudsql = base.clone();
    cloudsql.store = plan::Store::CloudSql("acme-prod:europe-west1:journal".into());
    variants.push(("cloudsql", cloudsql));
    let mut organization = base.clone();
    organization.organization = Some("123456789".into());
    variants.push(("organization", organization));
    let mut configured = base;
    configured.config_file = Some("/srv/antibody/antibody.toml".into());
    variants.push(("configured", configured));
    variants
}

// Issue 32: `terraform fmt -check` failed on every file the plan printed.
#[test]
fn every_terraform_variant_is_terraform_fmt_clean() {
    use std::io::Write as _;
    for (name, deployment) in variants() {
        let hcl = plan::terraform(&deployment);
        let mut child = std::process::Command::new("terraform")
            .args(["fmt", "-no-color", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("terraform is installed (the README's test command needs it)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(hcl.as_bytes())
            .expect("write");
        let output = child.wait_with_output().expect("terraform fmt");
        assert!(
            output.status.success(),
            "{name}: terraform cannot parse it: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let formatted = String::from_utf8_lossy(&output.stdout);
        let differs: Vec<(&str, &str)> = hcl
            .lines()
            .zip(formatted.lines())
            .filter(|(ours, theirs)| ours != theirs)
            .take(3)
            .collect();
        assert!(
            differs.is_empty() && hcl.lines().count() == formatted.lines().count(),
            "{name}: not terraform fmt clean: {differs:?}"
        );
    }
}

/// The words between the quotes after `prefix`, e.g. the APIs of `toset([...])`.
fn quoted_after(text: &str, prefix: &str, end: &str) -> BTreeSet<String> {
    let Some(start) = text.find(prefix) else {
        return BTreeSet::new();
    };
    let rest = &text[start + prefix.len()..];
    rest[..rest.find(end).unwrap_or(rest.len())]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

// Issue 32: the gcloud script and the Terraform describe the same deployment — the APIs they enable, the environment
// the service gets, its billing mode and request timeout, the scheduled calls and the triggers.
#[test]
fn gcloud_and_terraform_deploy_the_same_service() {
    for (name, deployment) in variants() {
        let script = plan::gcloud(&deployment);
        let hcl = plan::terraform(&deployment);
        assert_bash_parses(&script);
        let enabled: BTreeSet<String> = script
            .lines()
            .find_map(|line| line.strip_prefix("gcloud services enable "))
            .expect("services enable")
            .split_whitespace()
            .filter(|word| word.ends_with(".googleapis.com"))
            .map(str::to_string)
            .collect();
        assert_eq!(
            enabled,
            quoted_after(&hcl, "toset([", "])"),
            "{name}: the APIs"
        );
        for api in [
            "iam.googleapis.com",
            "logging.googleapis.com",
            "run.googleapis.com",
        ] {
            assert!(enabled.contains(api), "{name}: {api} is not enabled");
        }
        let deployed: BTreeSet<String> = deployed_environment(&script, "sa")
            .into_iter()
            .map(|(variable, _)| variable)
            .collect();
        let mut declared: BTreeSet<String> = hcl
            .split("env {")
            .skip(1)
            .filter_map(|block| quoted_after(block, "name", "\n").into_iter().next())
            .collect();
        // The Cloud SQL journal's URL is a secret in both (gcloud: --set-secrets).
        if script.contains("--set-secrets \"ANTIBODY_STATE=") {
            declared.remove("ANTIBODY_STATE");
        }
        assert_eq!(deployed, declared, "{name}: the service's environment");
        assert!(deployed.contains("ANTIBODY_CPU"), "{name}");
        assert!(
            script.contains("--cpu-throttling") && hcl.contains("cpu_idle = true"),
            "{name}: request-based billing in both"
        );
        assert!(
            script.contains(&format!("--timeout {}", plan::SWEEP_DEADLINE_SECS))
                && hcl.contains(&format!(
                    "timeout                          = \"{}s\"",
                    plan::SWEEP_DEADLINE_SECS
                )),
            "{name}: the request timeout"
        );
        for job in ["tick", "sweep"] {
            assert!(
                script.contains(&format!("antibody-{job} --location"))
                    && script.contains(&format!("--uri \"$URL/{job}\""))
                    && hcl.contains(&format!("\"${{local.url}}/{job}\"")),
                "{name}: /{job} is called on a schedule in both"
            );
        }
        let triggers_gcloud = script.matches("gcloud eventarc triggers create").count();
        let triggers_terraform = hcl.matches("resource \"google_eventarc_trigger\"").count();
        assert_eq!(triggers_gcloud, triggers_terraform, "{name}: the triggers");
        assert_eq!(
            triggers_gcloud,
            deployment.project_triggers().len(),
            "{name}"
        );
        assert!(
            hcl.contains("deletion_protection = false"),
            "{name}: terraform destroy can remove the service"
        );
        assert!(
            !hcl.contains("var.push_audience"),
            "{name}: nothing must be known before the service exists"
        );
    }
}
