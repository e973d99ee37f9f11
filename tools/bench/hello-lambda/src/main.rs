//! Benchmark baseline: a bare `lambda_runtime` function built with the workspace release
//! profile. It answers every event with a fixed API Gateway v2 style 201, so the harness can
//! treat it like the real functions; its cold start is the floor any Rust function pays.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({
            "statusCode": 201,
            "headers": { "content-type": "application/json" },
            "body": "{\"hello\":\"world\"}",
            "isBase64Encoded": false
        }))
    }))
    .await
}
