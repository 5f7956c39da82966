//! `plan` is derived from the policies: every watched method has a trigger, and the role covers every permission the
//! fixes really used against the sandbox (which records them per call, independently of antibody's code).

use std::collections::BTreeSet;

use antibody::config::Config;
use antibody::kinds::firewall::FixKind;
use antibody::plan;
use serde_json::json;

use crate::harness::{ENGINE, Harness, Options, PROJECT};

pub(crate) fn golden(name: &str, actual: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{path}: {err} (run with UPDATE_GOLDEN=1)"));
    assert_eq!(
        actual, expected,
        "{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)"
    );
}

/// The script is valid shell (`bash -n`: parsed, not run).
pub(crate) fn assert_bash_parses(script: &str) {
    let syntax = std::process::Command::new("bash")
        .args(["-n", "-c", script])
        .output()
        .expect("bash");
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
}

// Issue 32: a project's Eventarc triggers on folder and organization `SetIamPolicy` could never fire (a project's
// audit log never carries them); every other watched method has its trigger.
#[test]
fn every_watched_method_has_exactly_one_trigger() {
    let deployment = plan::deployment(&Config::default(), "p", "europe-west1", "image");
    let methods: Vec<&str> = deployment
        .triggers
        .iter()
        .map(|trigger| trigger.method_name)
        .collect();
    let expected: Vec<&str> = antibody::kinds::KindId::ALL
        .iter()
        .flat_map(|kind| kind.watches())
        .filter(|watch| {
            !watch.method.contains(".Folders.") && !watch.method.contains(".Organizations.")
        })
        .map(|watch| watch.method)
        .collect();
    assert_eq!(methods, expected);
    assert!(
        methods.contains(&"SetIamPolicy")
            && methods.contains(&"google.cloud.resourcemanager.v3.Projects.SetIamPolicy")
    );
    let script = plan::gcloud(&deployment);
    for dead in ["v3.Folders.SetIamPolicy", "v3.Organizations.SetIamPolicy"] {
        assert!(!script.contains(dead), "{dead} has a trigger in:\n{script}");
    }
    // An organization's sink carries them instead.
    assert!(deployment.sink_filter.contains("v3.Folders.SetIamPolicy"));
    let names: BTreeSet<&str> = deployment
        .triggers
        .iter()
        .map(|trigger| trigger.name.as_str())
        .collect();
    assert_eq!(
        names.len(),
        deployment.triggers.len(),
        "trigger names are unique"
    );
    assert!(
        names
            .iter()
            .all(|name| name.len() <= 63 && !name.ends_with('-'))
    );
}

#[test]
fn disabled_and_dry_run_policies_shrink_the_deployment() {
    let mut config = Config::default();
    config.policies.bucket.enabled = false;
    config.policies.project_iam.dry_run = true;
    let deployment = plan::deployment(&config, "p", "r", "i");
    assert!(
        deployment
            .triggers
            .iter()
            .all(|trigger| trigger.service_name != "storage.googleapis.com")
    );
    assert!(
        deployment
            .permissions
            .contains("resourcemanager.projects.getIamPolicy")
    );
    assert!(
        !deployment
            .permissions
            .contains("resourcemanager.projects.setIamPolicy")
    );
    assert!(
        !deployment
            .permissions
            .iter()
            .any(|permission| permission.starts_with("storage."))
    );
}

#[test]
fn the_gcloud_script_and_terraform_match_their_golden_files() {
    let deployment = plan::deployment(
        &Config::default(),
        "acme-prod",
        "europe-west1",
        "europe-docker.pkg.dev/acme/antibody:1.0",
    );
    let script = plan::gcloud(&deployment);
    golden("plan.gcloud.sh", &script);
    golden("plan.tf", &plan::terraform(&deployment));
    assert_bash_parses(&script);
}

#[test]
fn firestore_is_the_default_journal_and_the_service_scales_to_zero() {
    let deployment = plan::deployment(&Config::default(), "acme-prod", "europe-west1", "image");
    assert_eq!(deployment.store, plan::Store::default());
    let script = plan::gcloud(&deployment);
    for expected in [
        "firestore.googleapis.com",
        "gcloud firestore databases create --database \"(default)\" --location \"$REGION\" --type firestore-native",
        "--role roles/datastore.user",
        "gcloud firestore fields ttls update expireAt --collection-group \"$group\" --enable-ttl",
        "for group in antibody_events antibody_keys antibody_outbox antibody_pieces antibody_instances; do",
        "ANTIBODY_STATE=firestore://acme-prod",
        "--min-instances 0",
    ] {
        assert!(
            script.contains(expected),
            "{expected} missing from:\n{script}"
        );
    }
    assert!(!script.contains("--max-instances"), "{script}");
    let hcl = plan::terraform(&deployment);
    for expected in [
        "resource \"google_firestore_database\" \"antibody\"",
        "type            = \"FIRESTORE_NATIVE\"",
        "role    = \"roles/datastore.user\"",
        "collection = \"antibody_events\"",
        "value = \"firestore://acme-prod\"",
        "min_instance_count = 0",
    ] {
        assert!(hcl.contains(expected), "{expected} missing from:\n{hcl}");
    }
    assert!(!hcl.contains("max_instance_count"), "{hcl}");
}

#[test]
fn without_an_image_the_plan_builds_one_and_sweeps_run_from_cloud_scheduler() {
    let config = Config {
        sweep_projects: vec!["acme-prod".into(), "acme-data".into()],
        sweep_minutes: 30,
        ..Config::default()
    };
    let mut deployment = plan::deployment(&config, "acme-prod", "europe-west1", "unused");
    deployment.image = None;
    let script = plan::gcloud(&deployment);
    for expected in [
        "cloudbuild.googleapis.com",
        "artifactregistry.googleapis.com",
        "gcloud artifacts repositories create antibody --repository-format docker",
        "gcloud builds submit \"$SOURCE\" --tag \"$IMAGE\"",
        "--image \"$IMAGE\"",
        "cloudscheduler.googleapis.com",
        "--schedule \"*/30 * * * *\" --uri \"$URL/sweep\" --http-method POST",
        "--oidc-service-account-email \"$SA\" --oidc-token-audience \"$URL\"",
        "ANTIBODY_SWEEP_MINUTES=0",
    ] {
        assert!(
            script.contains(expected),
            "{expected} missing from:\n{script}"
        );
    }
    assert_bash_parses(&script);
    golden("plan.build.gcloud.sh", &script);
    // Issue 32: one apply from nothing — the image is built in the same apply, after the repository it goes to,
    // and the service waits for it; the URL is known before the service exists.
    let hcl = plan::terraform(&deployment);
    for expected in [
        "resource \"terraform_data\" \"image\"",
        "image = local.image",
        "depends_on = [google_artifact_registry_repository.antibody]",
        "resource \"google_artifact_registry_repository\" \"antibody\"",
        "resource \"google_cloud_scheduler_job\" \"antibody_sweep\"",
        "uri         = \"${local.url}/sweep\"",
        "url = \"https://antibody-${data.google_project.antibody.number}.europe-west1.run.app\"",
    ] {
        assert!(hcl.contains(expected), "{expected} missing from:\n{hcl}");
    }
}

#[test]
fn sqlite_is_one_instance_and_cloud_sql_shares_a_postgresql_journal() {
    let mut deployment = plan::deployment(&Config::default(), "acme-prod", "europe-west1", "image");
    deployment.store = plan::Store::Sqlite;
    let alone = plan::gcloud(&deployment);
    assert!(
        alone.contains("--min-instances 1 --max-instances 1"),
        "{alone}"
    );
    assert!(!alone.contains("--add-cloudsql-instances"), "{alone}");
    assert!(
        !alone.contains("ANTIBODY_STATE"),
        "the image's default names the file: {alone}"
    );
    assert!(plan::terraform(&deployment).contains("max_instance_count = 1"));
    golden("plan.sqlite.gcloud.sh", &alone);
    golden("plan.sqlite.tf", &plan::terraform(&deployment));

    deployment.store = plan::Store::CloudSql("acme-prod:europe-west1:journal".into());
    let shared = plan::gcloud(&deployment);
    for expected in [
        "--add-cloudsql-instances \"acme-prod:europe-west1:journal\"",
        "--set-secrets \"ANTIBODY_STATE=antibody-state:latest\"",
        "--role roles/cloudsql.client",
        "--role roles/secretmanager.secretAccessor",
        "sqladmin.googleapis.com",
        // The URL form a replica over the Cloud SQL socket uses (tests/it/replicas.rs connects the same way).
        "postgres://antibody:PASSWORD@/antibody?host=/cloudsql/acme-prod:europe-west1:journal",
    ] {
        assert!(
            shared.contains(expected),
            "{expected} missing from:\n{shared}"
        );
    }
    assert!(!shared.contains("--max-instances"), "{shared}");
    assert_bash_parses(&shared);
    golden("plan.cloudsql.gcloud.sh", &shared);
    golden("plan.cloudsql.tf", &plan::terraform(&deployment));
    let hcl = plan::terraform(&deployment);
    for expected in [
        "instances = [\"acme-prod:europe-west1:journal\"]",
        "mount_path = \"/cloudsql\"",
        "secret  = \"antibody-state\"",
        "role    = \"roles/cloudsql.client\"",
    ] {
        assert!(hcl.contains(expected), "{expected} missing from:\n{hcl}");
    }
    assert!(!hcl.contains("max_instance_count"), "{hcl}");
}

#[test]
fn a_cloud_sql_instance_is_named_project_region_instance() {
    assert!(plan::cloudsql_instance("acme-prod:europe-west1:journal").is_ok());
    for wrong in [
        "journal",
        "acme:journal",
        "acme::journal",
        "a:b:c:d",
        "acme:europe-west1:jour nal",
    ] {
        assert!(plan::cloudsql_instance(wrong).is_err(), "{wrong}");
    }
}

/// Drives every fix kind and a sweep as antibody, then checks the role covers what the sandbox saw antibody need.
#[tokio::test]
async fn the_role_covers_every_permission_the_fixes_used() {
    for fix in [FixKind::Disable, FixKind::Narrow, FixKind::Delete] {
        let options = Options {
            tweak: Box::new(move |config| config.policies.firewall.fix = fix),
            buckets: vec![json!({"name": "perm-bucket"})],
            ..Options::default()
        };
        let harness = Harness::with(options).await;
        harness.user_inserts(json!({"name": "perm-rule", "allowed": [{"IPProtocol": "tcp", "ports": ["22", "443"]}],
            "sourceRanges": ["0.0.0.0/0", "10.0.0.0/8"]})).await;
        harness
            .user_grants_on_bucket("perm-bucket", "roles/storage.objectViewer", "allUsers")
            .await;
        let (status, _) = harness
            .user_storage(
                reqwest::Method::POST,
                "/b/perm-bucket/acl",
                Some(json!({"entity": "allUsers", "role": "READER"})),
            )
            .await;
        assert_eq!(status, 412, "prevention is on after the first fix");
        harness
            .user_edits_project_policy("v1", |policy| {
                policy["bindings"]
                    .as_array_mut()
                    .expect("bindings")
                    .push(json!({"role": "roles/editor", "members": ["user:x@gmail.com"]}));
            })
            .await;
        antibody::scan::sweep(harness.cx(), &[PROJECT.to_string()], false, &Quiet).await;
        assert!(harness.count("remediated").await >= 3);
        let used = harness.sandbox.permissions_used_by(ENGINE);
        let mut config = Config::default();
        config.policies.firewall.fix = fix;
        let granted: BTreeSet<String> = plan::deployment(&config, PROJECT, "r", "i")
            .permissions
            .iter()
            .map(|p| p.to_string())
            .collect();
        let missing: Vec<&String> = used.difference(&granted).collect();
        assert!(
            missing.is_empty(),
            "fix {fix:?}: the role lacks {missing:?} (used {used:?})"
        );
    }
}

/// The instance kind with every fix turned on (full access stopped, or rescoped): the role covers what its fixes and
/// its sweep used.
#[tokio::test]
async fn the_role_covers_every_permission_the_instance_fixes_used() {
    use antibody::kinds::vm::policy::{Action, FullAccessFix, Rescope};
    let rescope = FullAccessFix::Rescope(Rescope {
        email: "vm-runner@test-project.iam.gserviceaccount.com".into(),
        scopes: vec![],
    });
    for full_access in [FullAccessFix::Stop, rescope] {
        let all_fixes = move |config: &mut Config| {
            for category in [
                "COMPUTE_SERIAL_PORTS_ENABLED",
                "COMPUTE_PROJECT_WIDE_SSH_KEYS_ALLOWED",
                "OS_LOGIN_DISABLED",
                "PUBLIC_IP_ADDRESS",
                "FULL_API_ACCESS",
            ] {
                config.policies.vm.actions.insert(category, Action::Fix);
            }
            config.policies.vm.full_access_fix = full_access.clone();
        };
        let harness = Harness::with(Options {
            tweak: Box::new(all_fixes.clone()),
            ..Options::default()
        })
        .await;
        let (status, _) = harness
            .compute_as(crate::harness::USER_TOKEN, reqwest::Method::POST, "/zones/us-central1-a/instances", Some(json!({
                "name": "perm-vm", "machineType": "e2-small",
                "metadata": {"items": [{"key": "serial-port-enable", "value": "true"}]},
                "serviceAccounts": [{"email": "default", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
                "networkInterfaces": [{"accessConfigs": [{}]}]})))
            .await;
        assert_eq!(status, 200);
        let (_, project) = harness
            .compute_as(crate::harness::USER_TOKEN, reqwest::Method::GET, "", None)
            .await;
        let (status, _) = harness
            .compute_as(crate::harness::USER_TOKEN, reqwest::Method::POST, "/setCommonInstanceMetadata", Some(json!({
                "fingerprint": project["commonInstanceMetadata"]["fingerprint"],
                "items": [{"key": "serial-port-enable", "value": "true"}, {"key": "enable-oslogin", "value": "false"}]})))
            .await;
        assert_eq!(status, 200);
        antibody::scan::sweep(harness.cx(), &[PROJECT.to_string()], false, &Quiet).await;
        assert!(harness.count("remediated").await >= 2);
        let used = harness.sandbox.permissions_used_by(ENGINE);
        assert!(
            used.contains("compute.instances.stop")
                && used.contains("compute.instances.deleteAccessConfig")
        );
        let mut config = Config::default();
        all_fixes(&mut config);
        let granted: BTreeSet<String> = plan::deployment(&config, PROJECT, "r", "i")
            .permissions
            .iter()
            .map(|p| p.to_string())
            .collect();
        let missing: Vec<&String> = used.difference(&granted).collect();
        assert!(
            missing.is_empty(),
            "the role lacks {missing:?} (used {used:?})"
        );
    }
}

/// The key kind: the role covers what disabling a key and sweeping accounts used.
#[tokio::test]
async fn the_role_covers_every_permission_the_key_fix_used() {
    let harness = Harness::start().await;
    let user = crate::harness::USER_TOKEN;
    let accounts = format!("/v1/projects/{PROJECT}/serviceAccounts");
    let (status, account) = harness
        .google_as(
            user,
            reqwest::Method::POST,
            &accounts,
            Some(json!({"accountId": "perm-account"})),
        )
        .await;
    assert_eq!(status, 200);
    let keys = format!(
        "{accounts}/{}/keys",
        account["email"].as_str().expect("email")
    );
    let (status, _) = harness
        .google_as(user, reqwest::Method::POST, &keys, Some(json!({})))
        .await;
    assert_eq!(status, 200);
    antibody::scan::sweep(harness.cx(), &[PROJECT.to_string()], false, &Quiet).await;
    assert!(harness.count("remediated").await >= 1);
    let used = harness.sandbox.permissions_used_by(ENGINE);
    assert!(used.contains("iam.serviceAccountKeys.disable"), "{used:?}");
    let granted: BTreeSet<String> = plan::deployment(&Config::default(), PROJECT, "r", "i")
        .permissions
        .iter()
        .map(|p| p.to_string())
        .collect();
    let missing: Vec<&String> = used.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "the role lacks {missing:?} (used {used:?})"
    );
}

struct Quiet;

impl antibody::scan::Progress for Quiet {
    fn step(&self, _message: &str) {}
}

/// The image's command line and default environment, read from the Dockerfile.
fn image_command() -> (Vec<String>, Vec<(String, String)>) {
    let dockerfile = include_str!("../../../../Dockerfile");
    let mut command = Vec::new();
    let mut environment = Vec::new();
    for line in dockerfile.lines() {
        if let Some(json) = line.strip_prefix("CMD ") {
            command = serde_json::from_str(json).expect("CMD in exec form");
        }
        if let Some((name, value)) = line
            .strip_prefix("ENV ")
            .and_then(|pair| pair.split_once('='))
        {
            environment.push((name.to_string(), value.to_string()));
        }
    }
    (command, environment)
}

// Issue 23: the image's CMD passed --state, which beats ANTIBODY_STATE, so the Cloud SQL deployment (whose secret sets
// ANTIBODY_STATE) would have journaled into the instance's memory. The image's command line, run with a deployment's
// environment, opens the journal that environment names.
#[tokio::test]
async fn the_image_opens_the_journal_its_deployment_names() {
    let (command, defaults) = image_command();
    assert_eq!(command.first().map(String::as_str), Some("serve"));
    assert!(
        !command
            .iter()
            .any(|argument| argument.starts_with("--state")),
        "{command:?}"
    );
    let dir = tempfile::tempdir().expect("dir");
    let named = dir.path().join("named-by-the-deployment.sqlite");
    let port = crate::harness::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args(&command)
        .envs(
            defaults
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
        // What the deployment sets over the image's defaults.
        .env("ANTIBODY_STATE", &named)
        .env("PORT", port.to_string())
        .env(
            "ANTIBODY_PUSH_SECRET",
            "0123456789abcdef0123456789abcdef-image",
        )
        .env("ANTIBODY_ACCESS_TOKEN", "unused")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("antibody runs");
    let client = crate::harness::http();
    crate::harness::wait_for(&format!("http://127.0.0.1:{port}/healthz"), &client).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(named.exists(), "the journal the deployment named");
}

/// The environment a gcloud script's `gcloud run deploy` gives the service, with `$SA` and `$URL` filled in.
pub(crate) fn deployed_environment(script: &str, account: &str) -> Vec<(String, String)> {
    let deploy: Vec<&str> = script
        .split("\n\n")
        .filter(|command| command.contains("gcloud run deploy"))
        .collect();
    assert_eq!(deploy.len(), 1, "one deploy");
    assert!(
        !script.contains("gcloud run services update"),
        "the deploy alone configures the service"
    );
    let line = deploy[0]
        .lines()
        .find(|line| line.contains("--set-env-vars \""))
        .expect("a --set-env-vars line in the deploy");
    let value = line
        .split("--set-env-vars \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a quoted value");
    value
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| {
            let value = value
                .replace("$SA", account)
                .replace("$URL", "https://antibody-123456789012.europe-west1.run.app");
            (name.to_string(), value)
        })
        .collect()
}

// The default deployment: the image's command line with the plan's environment journals in Firestore (here the
// sandbox's), not in the instance's memory. Issue 32: that environment is the first deploy's alone — the push
// audience came in a later command, and the first revision exited at once ("push authentication is not
// configured"), which stopped the script.
#[tokio::test]
async fn the_image_with_the_default_plans_environment_journals_in_firestore() {
    let (command, defaults) = image_command();
    let deployment = plan::deployment(&Config::default(), "acme-prod", "europe-west1", "image");
    let environment =
        deployed_environment(&plan::gcloud(&deployment), &deployment.service_account());
    assert!(
        environment
            .iter()
            .any(|(name, value)| name == "ANTIBODY_STATE" && value == "firestore://acme-prod"),
        "{environment:?}"
    );
    let sandbox = gcp_sandbox::start(
        gcp_sandbox::SandboxConfig::default(),
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
    )
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("dir");
    let port = crate::harness::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args(&command)
        .envs(
            defaults
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
        .envs(
            environment
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
        .env("ANTIBODY_GOOGLE_ENDPOINT", sandbox.base_url())
        .env("PORT", port.to_string())
        .env("ANTIBODY_ACCESS_TOKEN", "unused")
        .env_remove("ANTIBODY_PUSH_SECRET")
        .env_remove("ANTIBODY_CONFIG")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("antibody runs");
    let client = crate::harness::http();
    crate::harness::wait_for(&format!("http://127.0.0.1:{port}/healthz"), &client).await;
    let _ = child.kill();
    let _ = child.wait();
    let instances: serde_json::Value = client
        .post(format!(
            "{}/v1/projects/acme-prod/databases/(default)/documents:runQuery",
            sandbox.base_url()
        ))
        .json(&json!({"structuredQuery": {"from": [{"collectionId": "antibody_instances"}]}}))
        .send()
        .await
        .expect("runQuery")
        .json()
        .await
        .expect("json");
    assert!(
        instances
            .as_array()
            .is_some_and(|found| found.iter().any(|answer| answer.get("document").is_some())),
        "the service's heartbeat is in Firestore: {instances}"
    );
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "and no journal file was made"
    );
}
