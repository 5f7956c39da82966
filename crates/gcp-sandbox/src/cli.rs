//! Command-line options of the standalone sandbox, shared by `gcp-sandbox` and `antibody sandbox`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::{Delivery, DeliveryMode, SandboxConfig, Seed};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 8085)]
    pub port: u16,
    /// Deliver audit events here as Eventarc does (CloudEvents binary mode). Repeatable.
    #[arg(long = "deliver-to", value_name = "URL")]
    pub deliver_to: Vec<String>,
    /// Deliver over HTTP/2 cleartext, as Cloud Run's front end does to a service deployed with `--use-http2`.
    #[arg(long)]
    pub deliver_http2: bool,
    /// Deliver audit events here in CloudEvents structured mode. Repeatable.
    #[arg(long = "deliver-structured-to", value_name = "URL")]
    pub deliver_structured_to: Vec<String>,
    /// Deliver audit events here as Pub/Sub push envelopes. Repeatable.
    #[arg(long = "pubsub-push-to", value_name = "URL")]
    pub pubsub_push_to: Vec<String>,
    /// The log sink's filter in Logging's query language: only matching entries reach --pubsub-push-to.
    #[arg(long = "sink-filter", value_name = "FILTER")]
    pub sink_filter: Option<String>,
    /// A JSON file with initial resources: {"firewalls": {"PROJECT": [...]}, "principals": {"TOKEN": "EMAIL"}}.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Map a bearer token to a principal email (TOKEN=EMAIL). Repeatable.
    #[arg(long = "principal", value_name = "TOKEN=EMAIL")]
    pub principals: Vec<String>,
    /// Sign pushes with OIDC tokens for this audience (as an authenticated push subscription does).
    #[arg(long = "push-audience")]
    pub push_audience: Option<String>,
    /// The service account the push tokens name (with --push-audience).
    #[arg(
        long = "push-email",
        default_value = "eventarc-push@sandbox-project.iam.gserviceaccount.com"
    )]
    pub push_email: String,
    /// How long write operations stay RUNNING before they are DONE, in milliseconds.
    #[arg(long = "operation-delay-ms", default_value_t = 0)]
    pub operation_delay_ms: u64,
    /// How many audit entries, finished operations and delivery attempts to remember (each), the oldest
    /// forgotten first.
    #[arg(long, default_value_t = crate::DEFAULT_HISTORY)]
    pub history: usize,
    /// Enforce IAM: 401 without credentials, 403 when the caller's roles in the project lack the call's permission
    /// (custom roles through `POST /v1/projects/P/roles`).
    #[arg(long)]
    pub enforce_iam: bool,
    /// Delay every API answer by MS milliseconds, plus up to JITTER (`MS` or `MS,JITTER`): Google's latency.
    #[arg(long = "latency-ms", value_parser = crate::realism::Latency::parse)]
    pub latency: Option<crate::realism::Latency>,
    /// Answer Google's 429 RESOURCE_EXHAUSTED beyond N requests per project per second.
    #[arg(long = "quota-per-project-per-s", value_name = "N")]
    pub quota_per_project_per_s: Option<u32>,
    /// The organization's number: projects and folders not seeded elsewhere sit under it.
    #[arg(long, value_name = "NUMBER", default_value = crate::hierarchy::DEFAULT_ORGANIZATION,
          value_parser = organization_number)]
    pub organization: String,
    /// Answer every list at most N items a page, whatever the API's own page size: paging seen with a few resources.
    #[arg(long = "page-size", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: Option<u32>,
}

fn organization_number(text: &str) -> Result<String, String> {
    let number = text.strip_prefix("organizations/").unwrap_or(text);
    match !number.is_empty()
        && number.len() <= 20
        && number.bytes().all(|byte| byte.is_ascii_digit())
    {
        true => Ok(number.to_string()),
        false => Err(format!("'{text}' is not an organization number")),
    }
}

impl Args {
    pub fn config(&self) -> anyhow::Result<(SandboxConfig, SocketAddr)> {
        let mut config = SandboxConfig {
            history: self.history,
            enforce_iam: self.enforce_iam,
            latency: self.latency.unwrap_or_default(),
            quota_per_project_per_s: self.quota_per_project_per_s,
            organization: self.organization.clone(),
            ..SandboxConfig::default()
        };
        if let Some(path) = &self.seed {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading seed file {}", path.display()))?;
            config.seed = serde_json::from_str::<Seed>(&text)
                .with_context(|| format!("parsing seed file {}", path.display()))?;
        }
        for mapping in &self.principals {
            let (token, email) = mapping
                .split_once('=')
                .with_context(|| format!("--principal {mapping}: expected TOKEN=EMAIL"))?;
            config
                .principals
                .insert(token.to_string(), email.to_string());
        }
        let sink_filter = match &self.sink_filter {
            Some(text) => Some(std::sync::Arc::new(
                crate::logquery::Query::parse(text)
                    .map_err(|reason| anyhow::anyhow!("--sink-filter: {reason}"))?,
            )),
            None => None,
        };
        let modes = [
            (&self.deliver_to, DeliveryMode::EventarcBinary),
            (
                &self.deliver_structured_to,
                DeliveryMode::EventarcStructured,
            ),
            (&self.pubsub_push_to, DeliveryMode::PubSubPush),
        ];
        for (urls, mode) in modes {
            for url in urls {
                let identity =
                    self.push_audience
                        .clone()
                        .map(|audience| crate::oidc::PushIdentity {
                            audience,
                            email: self.push_email.clone(),
                        });
                config.deliveries.push(Delivery {
                    url: url.clone(),
                    mode,
                    identity,
                    filter: (mode == DeliveryMode::PubSubPush)
                        .then(|| sink_filter.clone())
                        .flatten(),
                });
            }
        }
        config.operation_delay = Duration::from_millis(self.operation_delay_ms);
        config.deliver_http2 = self.deliver_http2;
        config.page_size = self.page_size.map(|size| size as usize);
        Ok((config, SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))))
    }

    /// Runs the sandbox until Ctrl-C.
    pub async fn run(&self) -> anyhow::Result<()> {
        let (config, addr) = self.config()?;
        let running = crate::start(config, addr)
            .await
            .with_context(|| format!("starting the sandbox on {addr}"))?;
        println!("gcp-sandbox listening on {}", running.base_url());
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        Ok(())
    }
}
