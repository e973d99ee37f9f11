use lambda_http::{service_fn, Error};
use shared::config::Config;
use shared::store::dynamo::WarmUp;

// An execution environment serves one request at a time: one thread, no cross-thread
// wake-ups (measured in BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let state = config.edge(WarmUp::Read).await;
    let state = &state;
    lambda_http::run(service_fn(move |request| async move {
        Ok::<_, Error>(get_key::handle(state, request).await)
    }))
    .await
}
