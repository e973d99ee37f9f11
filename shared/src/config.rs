//! Start-up configuration: read once per execution environment, before the first request.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_dynamodb::Client;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::Provider;
use aws_smithy_http_client::{proxy::ProxyConfig, Builder, ConnectorBuilder};

use crate::domain::{Clock, KeyEnvironment, RateLimit};
use crate::http::metrics::Meter;
use crate::http::pipeline::Edge;
use crate::store::dynamo::{DynamoStore, Tables, WarmUp};
use crate::store::usage::{OutsideCalls, Usage};

/// DynamoDB answers single-item calls in milliseconds; anything slower than this is a fault,
/// and failing fast (503, retryable) beats holding the caller until the Lambda timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub tables: Tables,
    pub key_environment: KeyEnvironment,
    /// Set for DynamoDB Local; unset in AWS.
    pub dynamodb_endpoint: Option<String>,
    /// Requests per second of an account without a limit of its own
    /// (`DEFAULT_RATE_LIMIT`; unset: [`RateLimit::DEFAULT`]).
    pub default_rate_limit: RateLimit,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let required = |name: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| anyhow::anyhow!("environment variable {name} must be set"))
        };
        let key_environment = required("API_KEY_ENVIRONMENT")?
            .parse::<KeyEnvironment>()
            .map_err(|e| anyhow::anyhow!("API_KEY_ENVIRONMENT: {e}"))?;
        let default_rate_limit = match lookup("DEFAULT_RATE_LIMIT").filter(|v| !v.trim().is_empty())
        {
            None => RateLimit::DEFAULT,
            Some(value) => RateLimit::parse(&value)
                .map_err(|e| anyhow::anyhow!("DEFAULT_RATE_LIMIT: {}", e.message))?,
        };
        Ok(Config {
            tables: Tables {
                clients: required("CLIENTS_TABLE")?,
                payments: required("PAYMENTS_TABLE")?,
                audit: required("AUDIT_TABLE")?,
            },
            key_environment,
            dynamodb_endpoint: lookup("DYNAMODB_ENDPOINT").filter(|v| !v.trim().is_empty()),
            default_rate_limit,
        })
    }

    /// A function's edge on its DynamoDB store, with the connection warmed by `warm_up`:
    /// what `main` builds before the first request.
    pub async fn edge(&self, warm_up: WarmUp) -> Edge<DynamoStore> {
        let outside = OutsideCalls::default();
        let store = self.store(&outside).await;
        store.warm_up(warm_up).await;
        Edge::new(
            store,
            self.key_environment,
            self.default_rate_limit,
            Clock::system(),
            Meter::new(outside),
        )
    }

    /// The store, on a client that records its calls outside requests into `outside`.
    pub async fn store(&self, outside: &OutsideCalls) -> DynamoStore {
        DynamoStore::new(
            dynamodb_client_recording(self.dynamodb_endpoint.as_deref(), outside).await,
            self.tables.clone(),
        )
    }
}

/// [`dynamodb_client_recording`] for a client whose calls outside requests nobody reads (the
/// operator CLI, tests).
pub async fn dynamodb_client(endpoint: Option<&str>) -> Client {
    dynamodb_client_recording(endpoint, &OutsideCalls::default()).await
}

/// Builds the DynamoDB client with explicit timeouts and retries, recording what each call
/// consumes ([`Usage`]): into the running request's log, or outside requests into
/// `outside`. With an endpoint override (DynamoDB Local) it also supplies a region and
/// placeholder credentials when none are set, so local runs never wait on a credential
/// probe.
pub async fn dynamodb_client_recording(endpoint: Option<&str>, outside: &OutsideCalls) -> Client {
    let mut config = region_and_credentials(endpoint)
        .await
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .interceptor(Usage {
            outside: outside.clone(),
        });
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

/// What DynamoDB Local is given when nothing else is: it checks no signature.
fn placeholder_credentials() -> Credentials {
    Credentials::new("local", "local", Some("local".into()), None, "placeholder")
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

#[cfg(not(feature = "operator-credentials"))]
async fn region_and_credentials(endpoint: Option<&str>) -> aws_sdk_dynamodb::config::Builder {
    let (region, credentials) = from_environment(endpoint.is_some(), env);
    let mut config = aws_sdk_dynamodb::config::Builder::new();
    match region {
        Some(region) => config = config.region(region),
        None => tracing::warn!("no AWS_REGION: DynamoDB calls will fail"),
    }
    match credentials {
        Some(credentials) => config = config.credentials_provider(credentials),
        None => tracing::warn!("no AWS credentials in the environment: DynamoDB calls will fail"),
    }
    config
}

/// Region and credentials as Lambda gives them: `AWS_REGION` and the execution role's
/// temporary credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), which do not change during an execution environment's life; for
/// DynamoDB Local (`local`), a region and placeholder credentials where none are set.
#[cfg_attr(feature = "operator-credentials", allow(dead_code))]
fn from_environment(
    local: bool,
    lookup: impl Fn(&str) -> Option<String>,
) -> (Option<Region>, Option<Credentials>) {
    let region = lookup("AWS_REGION")
        .or_else(|| lookup("AWS_DEFAULT_REGION"))
        .map(Region::new)
        .or_else(|| local.then(|| Region::from_static("us-east-1")));
    let credentials = match (lookup("AWS_ACCESS_KEY_ID"), lookup("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some(Credentials::new(
            id,
            secret,
            lookup("AWS_SESSION_TOKEN"),
            None,
            "environment",
        )),
        _ => local.then(placeholder_credentials),
    };
    (region, credentials)
}

/// The SDK's whole chain for region and credentials (environment, profiles, SSO, assumed
/// roles, instance metadata): an operator's machine, not a function.
#[cfg(feature = "operator-credentials")]
async fn region_and_credentials(endpoint: Option<&str>) -> aws_sdk_dynamodb::config::Builder {
    // The chain's own calls (instance metadata, STS, SSO) go through the same HTTPS client:
    // without one, building the chain panics.
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
    if endpoint.is_some() {
        if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
            loader = loader.region(Region::from_static("us-east-1"));
        }
        if env("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(placeholder_credentials());
        }
    }
    aws_sdk_dynamodb::config::Builder::from(&loader.load().await)
}

#[cfg(not(any(feature = "tls-aws-lc", feature = "tls-ring")))]
compile_error!("the `aws` feature needs a TLS crypto: enable `tls-aws-lc` or `tls-ring`");

/// The TLS crypto this build links (the crate's `tls-ring` or `tls-aws-lc` feature).
#[cfg(feature = "tls-ring")]
const CRYPTO_MODE: CryptoMode = CryptoMode::Ring;
#[cfg(all(feature = "tls-aws-lc", not(feature = "tls-ring")))]
const CRYPTO_MODE: CryptoMode = CryptoMode::AwsLc;

/// The SDK's default HTTPS client (hyper 1 and rustls, proxy settings from the environment,
/// the connect timeout and sleep of the client's own configuration), with the crypto this
/// build picks. The trusted roots are the system's, or those `SSL_CERT_FILE` names.
fn https_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(Provider::Rustls(CRYPTO_MODE));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn reads_every_setting() {
        let config = Config::from_lookup(lookup(&[
            ("CLIENTS_TABLE", "c"),
            ("PAYMENTS_TABLE", "p"),
            ("AUDIT_TABLE", "a"),
            ("API_KEY_ENVIRONMENT", "live"),
            ("DYNAMODB_ENDPOINT", "http://127.0.0.1:8000"),
            ("DEFAULT_RATE_LIMIT", "250"),
        ]))
        .unwrap();
        assert_eq!(config.default_rate_limit, RateLimit::new(250).unwrap());
        assert_eq!(
            config.tables,
            Tables {
                clients: "c".into(),
                payments: "p".into(),
                audit: "a".into()
            }
        );
        assert_eq!(config.key_environment, KeyEnvironment::Live);
        assert_eq!(
            config.dynamodb_endpoint.as_deref(),
            Some("http://127.0.0.1:8000")
        );
    }

    #[test]
    fn region_and_credentials_come_from_the_environment_as_lambda_sets_them() {
        let (region, credentials) = from_environment(
            false,
            lookup(&[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
                ("AWS_SESSION_TOKEN", "token"),
            ]),
        );
        assert_eq!(region.as_ref().map(|r| r.as_ref()), Some("eu-west-1"));
        let credentials = credentials.unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "secret");
        assert_eq!(credentials.session_token(), Some("token"));
        // DynamoDB Local with nothing set: a region and placeholder credentials.
        let (region, credentials) = from_environment(true, lookup(&[]));
        assert_eq!(region.as_ref().map(|r| r.as_ref()), Some("us-east-1"));
        assert_eq!(credentials.unwrap().access_key_id(), "local");
        // In AWS with nothing set, nothing is made up.
        let (region, credentials) =
            from_environment(false, lookup(&[("AWS_DEFAULT_REGION", "us-west-2")]));
        assert_eq!(region.as_ref().map(|r| r.as_ref()), Some("us-west-2"));
        assert!(credentials.is_none());
    }

    #[test]
    fn missing_or_bad_settings_fail_at_start() {
        let base = [
            ("CLIENTS_TABLE", "c"),
            ("PAYMENTS_TABLE", "p"),
            ("AUDIT_TABLE", "a"),
            ("API_KEY_ENVIRONMENT", "test"),
        ];
        for skip in 0..base.len() {
            let partial: Vec<_> = base
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, p)| *p)
                .collect();
            let err = Config::from_lookup(lookup(&partial)).unwrap_err();
            assert!(err.to_string().contains(base[skip].0), "{err}");
        }
        let err = Config::from_lookup(lookup(&[
            ("CLIENTS_TABLE", "c"),
            ("PAYMENTS_TABLE", "p"),
            ("AUDIT_TABLE", "a"),
            ("API_KEY_ENVIRONMENT", "prod"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("API_KEY_ENVIRONMENT"));
        let unset = Config::from_lookup(lookup(&base)).unwrap();
        assert_eq!(unset.default_rate_limit, RateLimit::DEFAULT);
        for bad in ["0", "-5", "lots", "100001"] {
            let mut with = base.to_vec();
            with.push(("DEFAULT_RATE_LIMIT", bad));
            let err = Config::from_lookup(lookup(&with)).unwrap_err();
            assert!(
                err.to_string().contains("DEFAULT_RATE_LIMIT"),
                "{bad}: {err}"
            );
        }
    }
}
