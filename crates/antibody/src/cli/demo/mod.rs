//! `antibody demo`: the sandbox and the engine in one process; a careless user opens holes, antibody closes them.

mod bucket;
mod firewall;
mod log_routing;
mod organization;
mod project_iam;
mod public_data;
mod sa_key;
mod vm;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use antibody::config::Config;
use antibody::notify::LogSink;

const PROJECT: &str = "demo-project";
const USER_TOKEN: &str = "careless-user-token";
const USER: &str = "careless.user@example.com";
const ENGINE_TOKEN: &str = "antibody-token";
const ENGINE: &str = "antibody@demo-project.iam.gserviceaccount.com";

/// What every scenario needs: the sandbox, an HTTP client acting as the user, and a table to print into.
struct Scene {
    sandbox: gcp_sandbox::Running,
    client: reqwest::Client,
    all_ok: bool,
    row: usize,
}

impl Scene {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(USER_TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "the sandbox refused {path}: {answer}");
        Ok(answer)
    }

    /// Polls `healed` until it holds (10 s at most); returns whether it did and how long it took.
    async fn wait_until(
        &self,
        mut healed: impl AsyncFnMut() -> anyhow::Result<bool>,
    ) -> anyhow::Result<(bool, Duration)> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if healed().await? {
                return Ok((true, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        Ok((false, started.elapsed()))
    }

    fn header(&self, title: &str) {
        println!("\n{title}");
        println!(
            "{:<3} {:<46} {:<36} {:>9}  check",
            "#", "the user", "antibody", "healed in"
        );
    }

    fn report(&mut self, what: &str, action: &str, elapsed: Option<Duration>, ok: bool) {
        self.row += 1;
        self.all_ok &= ok;
        let timing = elapsed
            .map(|elapsed| format!("{:.1} ms", elapsed.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<3} {:<46} {:<36} {:>9}  {}",
            self.row,
            what,
            action,
            timing,
            if ok { "ok" } else { "FAILED" }
        );
    }
}

/// Creates antibody's custom role under `parent` (`projects/P`, `organizations/N`) with `permissions`.
async fn create_role(
    sandbox: &gcp_sandbox::Running,
    parent: &str,
    permissions: &[&str],
) -> anyhow::Result<()> {
    let role = json!({"roleId": antibody::plan::ROLE, "role": {"title": "antibody remediator",
        "includedPermissions": permissions}});
    let created = gcp_sandbox::http_client(Duration::from_secs(10))
        .post(format!("{}/v1/{parent}/roles", sandbox.base_url()))
        .bearer_auth(USER_TOKEN)
        .json(&role)
        .send()
        .await
        .context("creating antibody's custom role")?;
    anyhow::ensure!(
        created.status().is_success(),
        "the sandbox refused antibody's custom role in {parent}: {}",
        created.text().await.unwrap_or_default()
    );
    Ok(())
}

/// Runs the demo and prints its tables; `Ok(false)` when any expectation failed.
pub(crate) async fn run() -> anyhow::Result<bool> {
    let mut sandbox_config = gcp_sandbox::SandboxConfig::default();
    sandbox_config
        .principals
        .insert(USER_TOKEN.into(), USER.into());
    sandbox_config
        .principals
        .insert(ENGINE_TOKEN.into(), ENGINE.into());
    // The sandbox enforces IAM: antibody works with exactly the custom role `antibody plan` prints.
    sandbox_config.enforce_iam = true;
    sandbox_config
        .seed
        .project_policies
        .insert(PROJECT.into(), project_iam::seed_policy());
    sandbox_config
        .seed
        .buckets
        .insert(PROJECT.into(), bucket::seed_buckets());
    // The organization: the demo project in the Engineering folder, another project in the Playground folder.
    let seed = &mut sandbox_config.seed;
    for folder in [organization::ENGINEERING, organization::PLAYGROUND] {
        seed.folders
            .insert(folder.into(), organization::ORGANIZATION.into());
    }
    seed.parents
        .insert(PROJECT.into(), organization::ENGINEERING.into());
    seed.parents.insert(
        organization::PLAYGROUND_PROJECT.into(),
        organization::PLAYGROUND.into(),
    );
    seed.container_policies.insert(
        organization::ORGANIZATION.into(),
        organization::seed_policy(),
    );
    let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let sandbox = gcp_sandbox::start(sandbox_config, localhost)
        .await
        .context("starting the sandbox")?;

    let state = tempfile::tempdir().context("creating a temporary directory")?;
    let mut config = Config {
        state: state.path().join("journal.sqlite"),
        google_endpoint: Some(sandbox.base_url()),
        access_token: Some(ENGINE_TOKEN.into()),
        identities: vec![ENGINE.into()],
        ..Config::default()
    };
    config.policies.project_iam.allowed_domains = vec!["example.com".into()];
    // antibody acts on the organization, except the Playground folder.
    config.scope.organization = Some(organization::ORGANIZATION.into());
    config.scope.exclude_folders = vec![organization::PLAYGROUND.into()];
    let mut deployment = antibody::plan::deployment(&config, PROJECT, "europe-west1", "antibody");
    let permissions: Vec<&str> = deployment.permissions.iter().copied().collect();
    create_role(&sandbox, &format!("projects/{PROJECT}"), &permissions).await?;
    // The same role as `antibody plan --organization` creates it at the organization (bound there by the seed).
    deployment.organization = Some(
        organization::ORGANIZATION
            .trim_start_matches("organizations/")
            .into(),
    );
    let organization_permissions: Vec<&str> = deployment.role_permissions().into_iter().collect();
    create_role(
        &sandbox,
        organization::ORGANIZATION,
        &organization_permissions,
    )
    .await?;
    // The demo makes more fixes in one project than the default blast-radius cap (10 an hour) allows.
    config.safety.max_fixes_per_project_per_hour = 100;
    let context = antibody::build(config, LogSink::memory()).await?;
    // The web team registered their site as meant to be public (`antibody exempt add`): the registry, not a label
    // anyone could set, is what exempts a resource.
    context
        .journal
        .add_exemption(
            "projects/_/buckets/www-demo-site",
            "web-team@example.com",
            "the public website",
            None,
        )
        .await?;
    let server = antibody::start(context.clone(), localhost)
        .await
        .context("starting the receiver")?;
    sandbox.add_delivery(gcp_sandbox::Delivery::eventarc(server.url()));

    println!(
        "antibody demo: a local Google API sandbox at {} delivers audit events to antibody at {}",
        sandbox.base_url(),
        server.url()
    );
    println!(
        "the careless user is {USER}; antibody acts as {ENGINE} with only the custom role `antibody plan` prints \
         ({} permissions; the sandbox enforces IAM); the organisation's domain is example.com",
        permissions.len()
    );

    let mut scene = Scene {
        sandbox,
        client: gcp_sandbox::http_client(Duration::from_secs(10)),
        all_ok: true,
        row: 0,
    };
    firewall::play(&mut scene).await?;
    project_iam::play(&mut scene).await?;
    bucket::play(&mut scene).await?;
    vm::play(&mut scene, &context).await?;
    sa_key::play(&mut scene).await?;
    log_routing::play(&mut scene).await?;
    public_data::play(&mut scene).await?;
    organization::play(&mut scene, &context).await?;

    let entries = context.journal.entries(10_000).await?;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for entry in &entries {
        *counts
            .entry(entry.outcome.clone().unwrap_or(entry.state.clone()))
            .or_default() += 1;
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(outcome, count)| format!("{count} {outcome}"))
        .collect();
    println!(
        "\njournal: {} audit events: {}",
        entries.len(),
        counts.join(", ")
    );
    let alerts: Vec<_> = context
        .log
        .lines()
        .into_iter()
        .filter(|line| line["severity"] != "INFO")
        .collect();
    println!("structured alerts written: {}", alerts.len());
    if let Some(line) = alerts.first() {
        println!(
            "e.g. {}",
            json!({"severity": line["severity"], "message": line["message"]})
        );
    }
    let verdict = if scene.all_ok {
        "every hole was closed, everything else left as it was"
    } else {
        "SOME EXPECTATIONS FAILED"
    };
    println!("\n{verdict}");
    server.shutdown();
    scene.sandbox.shutdown();
    Ok(scene.all_ok)
}
