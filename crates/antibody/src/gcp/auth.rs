//! Credentials for Google's APIs, found the way Google's own tools find them (Application Default Credentials, through
//! Google's `google-cloud-auth` crate): a service-account key in `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's user
//! credentials, an impersonation file, or the metadata server on Cloud Run and GCE (`GCE_METADATA_HOST` honoured);
//! optionally impersonating a service account. The crate caches tokens and refreshes them before they expire.

use google_cloud_auth::credentials::{AccessTokenCredentials, Builder, impersonated, mds};

use super::Error;

/// The scope every call needs: IAM decides what antibody may do.
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

#[derive(Debug)]
pub enum Credentials {
    /// No Authorization header (the sandbox accepts that).
    Anonymous,
    /// A fixed token (`--access-token`, e.g. `$(gcloud auth print-access-token)`).
    Token(String),
    /// Credentials from `google-cloud-auth`, which mints, caches and refreshes tokens.
    Google(AccessTokenCredentials),
}

/// Why credentials could not be set up: shown to the user as is.
#[derive(Debug, thiserror::Error)]
#[error("Google credentials: {0}")]
pub struct SetupError(String);

impl Credentials {
    /// Application Default Credentials, impersonating `impersonate` if given.
    pub fn application_default(impersonate: Option<&str>) -> Result<Self, SetupError> {
        // The auth library signs JWTs and speaks TLS through rustls's process-wide provider.
        crate::install_tls_provider();
        let fail = |err: google_cloud_auth::build_errors::Error| SetupError(err.to_string());
        let credentials = match impersonate {
            None => Builder::default()
                .with_scopes([CLOUD_PLATFORM])
                .build_access_token_credentials()
                .map_err(fail)?,
            Some(target) => {
                let source = Builder::default().build().map_err(fail)?;
                impersonated::Builder::from_source_credentials(source)
                    .with_target_principal(target)
                    .with_scopes([CLOUD_PLATFORM])
                    .build_access_token_credentials()
                    .map_err(fail)?
            }
        };
        Ok(Credentials::Google(credentials))
    }

    /// The metadata server at `host` (`metadata.google.internal` on Google's infrastructure).
    pub fn metadata(host: &str) -> Result<Self, SetupError> {
        crate::install_tls_provider();
        mds::Builder::default()
            .with_endpoint(format!("http://{host}"))
            .with_scopes([CLOUD_PLATFORM])
            .build_access_token_credentials()
            .map(Credentials::Google)
            .map_err(|err| SetupError(err.to_string()))
    }

    /// The bearer token to send now, if any.
    pub async fn token(&self) -> Result<Option<String>, Error> {
        match self {
            Credentials::Anonymous => Ok(None),
            Credentials::Token(token) => Ok(Some(token.clone())),
            Credentials::Google(credentials) => match credentials.access_token().await {
                Ok(token) => Ok(Some(token.token)),
                Err(err) if err.is_transient() => Err(Error::Retryable {
                    status: 0,
                    message: format!("getting an access token: {err}"),
                    after: None,
                }),
                Err(err) => Err(Error::Permanent {
                    status: 401,
                    message: format!("getting an access token: {err}"),
                }),
            },
        }
    }
}
