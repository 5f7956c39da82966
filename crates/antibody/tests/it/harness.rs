//! The test harness: a sandbox, an engine subscribed to it, and a user who makes changes.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use antibody::config::Config;
use antibody::notify::LogSink;
use antibody::pipeline::Context;
use gcp_sandbox::{Delivery, DeliveryMode, RetryPolicy, SandboxConfig};
use serde_json::{Value, json};

pub const PROJECT: &str = "test-project";
pub const USER_TOKEN: &str = "user-token";
pub const USER: &str = "user@example.com";
pub const ENGINE_TOKEN: &str = "engine-token";
pub const ENGINE: &str = "antibody@test-project.iam.gserviceaccount.com";

/// A rule that opens SSH to the whole internet.
pub fn open_ssh(name: &str) -> Value {
    serde_json::json!({"name": name, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]})
}

pub struct Harness {
    pub sandbox: gcp_sandbox::Running,
    pub engine: antibody::Server,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub struct Options {
    pub mode: DeliveryMode,
    pub operation_delay: Duration,
    pub tweak: Box<dyn FnOnce(&mut Config)>,
    /// The engine's wall clock: the system's unless a test moves a manual one.
    pub clock: antibody::clock::Clock,
    /// Rules that exist before anyone subscribed (no audit events for them).
    pub seed: Vec<Value>,
    /// The project's IAM policy before anyone subscribed.
    pub project_policy: Option<Value>,
    /// Resource Manager's hierarchy: `folders/N` → parent, and project id → parent.
    pub folders: Vec<(String, String)>,
    pub parents: Vec<(String, String)>,
    /// Buckets that exist before anyone subscribed.
    pub buckets: Vec<Value>,
    /// Sign the sandbox's pushes with OIDC tokens for this identity.
    pub push_identity: Option<gcp_sandbox::oidc::PushIdentity>,
    /// The sandbox enforces IAM (401/403 by the project's policy).
    pub enforce_iam: bool,
    /// Deliver only the entries this log-sink filter selects, as an organization sink does.
    pub sink_filter: Option<String>,
    /// Keep the SQLite file even when the suite runs on Firestore (`ANTIBODY_TEST_JOURNAL=firestore`): the test
    /// reads the file itself.
    pub sqlite_only: bool,
    /// The sandbox answers every list this many items a page (`None`: each API's own page size).
    pub page_size: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: DeliveryMode::EventarcBinary,
            operation_delay: Duration::ZERO,
            tweak: Box::new(|_| {}),
            clock: antibody::clock::Clock::system(),
            seed: Vec::new(),
            project_policy: None,
            folders: Vec::new(),
            parents: Vec::new(),
            buckets: Vec::new(),
            push_identity: None,
            enforce_iam: false,
            sink_filter: None,
            sqlite_only: false,
            page_size: None,
        }
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Harness {
        let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let mut sandbox_config = SandboxConfig::default();
        sandbox_config
            .principals
            .insert(USER_TOKEN.into(), USER.into());
        sandbox_config
            .principals
            .insert(ENGINE_TOKEN.into(), ENGINE.into());
        sandbox_config.operation_delay = options.operation_delay;
        sandbox_config.enforce_iam = options.enforce_iam;
        sandbox_config.page_size = options.page_size;
        sandbox_config
            .seed
            .firewalls
            .insert(PROJECT.into(), options.seed);
        sandbox_config
            .seed
            .buckets
            .insert(PROJECT.into(), options.buckets);
        if let Some(policy) = options.project_policy {
            sandbox_config
                .seed
                .project_policies
                .insert(PROJECT.into(), policy);
        }
        sandbox_config.seed.folders = options.folders.into_iter().collect();
        sandbox_config.seed.parents = options.parents.into_iter().collect();
        sandbox_config.retry = RetryPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            max_attempts: 5,
            timeout: Duration::from_secs(10),
        };
        let sandbox = gcp_sandbox::start(sandbox_config, localhost)
            .await
            .expect("sandbox starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            state: dir.path().join("journal.sqlite"),
            google_endpoint: Some(sandbox.base_url()),
            access_token: Some(ENGINE_TOKEN.into()),
            identities: vec![ENGINE.into()],
            ..Config::default()
        };
        // The suite runs once more on the Firestore journal (in this sandbox) when the environment asks for it.
        if std::env::var("ANTIBODY_TEST_JOURNAL").as_deref() == Ok("firestore")
            && !options.sqlite_only
        {
            config.state = "firestore://harness-journal".into();
            // And every call to Google's APIs over HTTP/2, as the deployment makes them.
            config.google_http2 = true;
        }
        (options.tweak)(&mut config);
        // Push tokens are signed by the sandbox: their keys are at its JWKS endpoint.
        config
            .jwks_url
            .get_or_insert_with(|| format!("{}/oauth2/v3/certs", sandbox.base_url()));
        let context = antibody::build_with(config, LogSink::memory(), options.clock)
            .await
            .expect("engine builds");
        let engine = antibody::start(context, localhost)
            .await
            .expect("engine starts");
        sandbox.add_delivery(Delivery {
            url: engine.url(),
            mode: options.mode,
            identity: options.push_identity,
            filter: options.sink_filter.map(|text| {
                Arc::new(gcp_sandbox::logquery::Query::parse(&text).expect("a sink filter"))
            }),
        });
        Harness {
            sandbox,
            engine,
            http: gcp_sandbox::http_client(Duration::from_secs(10)),
            _dir: dir,
        }
    }

    /// An operator undoes journal row `id` through the engine's undo (registering an hour's exemption); returns once
    /// the events it caused are handled.
    pub async fn undo(&self, id: i64) -> antibody::undo::Undone {
        let cx = self.cx();
        let undone = antibody::undo::undo(
            &cx.journal,
            &cx.gcp,
            (&cx.config.templates, &cx.config.channels),
            &antibody::undo::Request {
                id,
                force: false,
                operator: "operator@example.com".into(),
                keep_exempt_secs: Some(3600),
            },
        )
        .await
        .expect("undo");
        self.sandbox.settled().await;
        undone
    }

    /// The engine's journal opened again, as another process would open it (a file, or the sandbox's Firestore).
    pub async fn reopen_journal(&self) -> antibody::journal::Journal {
        let access = antibody::journal::Access {
            endpoints: antibody::gcp::Endpoints::new(Some(&self.sandbox.base_url()))
                .speaking_http2(self.cx().config.google_http2),
            credentials: Arc::new(antibody::gcp::auth::Credentials::Token(ENGINE_TOKEN.into())),
        };
        antibody::journal::Journal::open_using(
            &self.cx().config.state,
            antibody::clock::Clock::system(),
            Some(&access),
        )
        .await
        .expect("the journal opens again")
    }

    pub fn cx(&self) -> &Arc<Context> {
        &self.engine.context
    }

    pub fn firewalls_url(&self) -> String {
        format!(
            "{}/compute/v1/projects/{PROJECT}/global/firewalls",
            self.sandbox.base_url()
        )
    }

    /// The user creates a rule; returns once every resulting event has been handled.
    pub async fn user_inserts(&self, body: Value) {
        self.user_inserts_with(None, body).await;
    }

    /// The user creates a rule through a tool that names itself in `User-Agent` (Terraform, Config Connector).
    pub async fn user_inserts_with(&self, user_agent: Option<&str>, body: Value) {
        let mut request = self.http.post(self.firewalls_url()).bearer_auth(USER_TOKEN);
        if let Some(agent) = user_agent {
            request = request.header(reqwest::header::USER_AGENT, agent);
        }
        let response = request.json(&body).send().await.expect("insert");
        assert!(
            response.status().is_success(),
            "insert refused: {}",
            response.text().await.unwrap_or_default()
        );
        self.sandbox.settled().await;
    }

    pub async fn user_patches(&self, name: &str, body: Value) {
        let url = format!("{}/{name}", self.firewalls_url());
        let response = self
            .http
            .patch(url)
            .bearer_auth(USER_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("patch");
        assert!(
            response.status().is_success(),
            "patch refused: {}",
            response.text().await.unwrap_or_default()
        );
        self.sandbox.settled().await;
    }

    /// Reads the project policy at version 3, as a careful user would.
    pub async fn project_policy(&self) -> Value {
        let url = format!(
            "{}/v1/projects/{PROJECT}:getIamPolicy",
            self.sandbox.base_url()
        );
        let body = serde_json::json!({"options": {"requestedPolicyVersion": 3}});
        self.http
            .post(url)
            .bearer_auth(USER_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    /// The user edits the project policy through `api` (`v1` or `v3`); returns once every event has been handled.
    pub async fn user_edits_project_policy(&self, api: &str, edit: impl FnOnce(&mut Value)) {
        let mut policy = self.project_policy().await;
        edit(&mut policy);
        let url = format!(
            "{}/{api}/projects/{PROJECT}:setIamPolicy",
            self.sandbox.base_url()
        );
        let response = self
            .http
            .post(url)
            .bearer_auth(USER_TOKEN)
            .json(&serde_json::json!({"policy": policy}))
            .send()
            .await
            .expect("set");
        assert!(
            response.status().is_success(),
            "setIamPolicy refused: {}",
            response.text().await.unwrap_or_default()
        );
        self.sandbox.settled().await;
    }

    /// A Compute Engine call (`path` under `/compute/v1/projects/PROJECT`) by the principal `token` stands for;
    /// returns once every resulting event has been handled.
    pub async fn compute_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.google_as(
            token,
            method,
            &format!("/compute/v1/projects/{PROJECT}{path}"),
            body,
        )
        .await
    }

    /// Any call to the sandbox (`path` from its base URL) by the principal `token` stands for; returns once every
    /// resulting event has been handled.
    pub async fn google_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.sandbox.base_url());
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("compute call");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        self.sandbox.settled().await;
        (status, body)
    }

    /// Calls the storage API as the user; returns once every event has been handled.
    pub async fn user_storage(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.storage_as(USER_TOKEN, method, path, body).await
    }

    /// A Cloud Storage call by the principal `token` stands for (an unmapped token is a principal of its own name).
    pub async fn storage_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(
                method,
                format!("{}/storage/v1{path}", self.sandbox.base_url()),
            )
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("storage call");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        self.sandbox.settled().await;
        (status, body)
    }

    /// An organization's IAM policy, read at version 3.
    pub async fn organization_policy(&self, id: &str) -> Value {
        self.http
            .post(format!(
                "{}/v1/organizations/{id}:getIamPolicy",
                self.sandbox.base_url()
            ))
            .json(&json!({"options": {"requestedPolicyVersion": 3}}))
            .send()
            .await
            .expect("read")
            .json()
            .await
            .expect("a policy")
    }

    /// The user writes an organization's IAM policy; returns the status once every delivery has settled.
    pub async fn user_sets_organization_policy(&self, id: &str, policy: Value) -> u16 {
        let status = self
            .http
            .post(format!(
                "{}/v1/organizations/{id}:setIamPolicy",
                self.sandbox.base_url()
            ))
            .bearer_auth(USER_TOKEN)
            .json(&json!({"policy": policy}))
            .send()
            .await
            .expect("write")
            .status()
            .as_u16();
        self.sandbox.settled().await;
        status
    }

    pub async fn bucket(&self, name: &str) -> Value {
        self.user_storage(
            reqwest::Method::GET,
            &format!("/b/{name}?projection=full"),
            None,
        )
        .await
        .1
    }

    pub async fn bucket_policy(&self, name: &str) -> Value {
        self.user_storage(
            reqwest::Method::GET,
            &format!("/b/{name}/iam?optionsRequestedPolicyVersion=3"),
            None,
        )
        .await
        .1
    }

    /// The user adds `member` to `role` on a bucket's IAM policy (etag-checked); returns the HTTP status.
    pub async fn user_grants_on_bucket(&self, name: &str, role: &str, member: &str) -> u16 {
        self.grants_on_bucket_as(USER_TOKEN, name, role, member)
            .await
    }

    pub async fn grants_on_bucket_as(
        &self,
        token: &str,
        name: &str,
        role: &str,
        member: &str,
    ) -> u16 {
        let mut policy = self.bucket_policy(name).await;
        policy["bindings"]
            .as_array_mut()
            .expect("bindings")
            .push(serde_json::json!({"role": role, "members": [member]}));
        self.storage_as(
            token,
            reqwest::Method::PUT,
            &format!("/b/{name}/iam"),
            Some(policy),
        )
        .await
        .0
    }

    /// Creates a rule as the principal `token` stands for.
    pub async fn inserts_as(&self, token: &str, body: Value) {
        self.inserts_as_with(token, None, body).await;
    }

    /// Creates a rule as the principal `token` stands for, through a tool that names itself in `User-Agent`.
    pub async fn inserts_as_with(&self, token: &str, user_agent: Option<&str>, body: Value) {
        let mut request = self.http.post(self.firewalls_url()).bearer_auth(token);
        if let Some(agent) = user_agent {
            request = request.header(reqwest::header::USER_AGENT, agent);
        }
        let response = request.json(&body).send().await.expect("insert");
        assert!(response.status().is_success(), "insert refused");
        self.sandbox.settled().await;
    }

    pub async fn rule(&self, name: &str) -> Value {
        let url = format!("{}/{name}", self.firewalls_url());
        self.http
            .get(url)
            .bearer_auth(USER_TOKEN)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    pub async fn outcomes(&self) -> Vec<String> {
        let mut entries = self.cx().journal.entries(10_000).await.expect("journal");
        entries.reverse();
        entries
            .into_iter()
            .map(|entry| entry.outcome.unwrap_or(entry.state))
            .collect()
    }

    pub async fn count(&self, outcome: &str) -> usize {
        self.outcomes()
            .await
            .iter()
            .filter(|seen| *seen == outcome)
            .count()
    }

    /// Posts a body straight to the engine, as a sender would.
    pub async fn post(&self, headers: &[(&str, &str)], body: String) -> (u16, Value) {
        let mut request = self.http.post(self.engine.url()).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("post");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

// Separate processes: the `antibody` binary as users run it.

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Kills a child process when dropped, so a failing test leaves nothing running.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn(args: &[&str]) -> Running {
    spawn_with_env(args, &[])
}

pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Running {
    Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("antibody starts"),
    )
}

pub async fn wait_for(url: &str, client: &reqwest::Client) {
    // Up to 20 s: a process starts in milliseconds, but a loaded two-core machine may keep it waiting.
    for _ in 0..800 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{url} never answered");
}

/// An HTTP client for a test to talk to the sandbox and antibody directly (with the TLS provider antibody uses).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Waits (bounded) until every alert in the outbox has been delivered, and returns them.
pub async fn all_delivered(
    journal: &antibody::journal::Journal,
) -> Vec<antibody::journal::OutboxItem> {
    for _ in 0..400 {
        let alerts = journal.alerts(100).await.expect("outbox");
        if alerts.iter().all(|alert| alert.state == "delivered") {
            return alerts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "alerts never all delivered: {:?}",
        journal.alerts(100).await
    );
}
