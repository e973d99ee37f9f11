//! `dev-gateway LISTEN_PORT UPSTREAM_PORT`: what `make dev` (and the end-to-end tests) put in
//! front of `cargo lambda watch`, so that a function sees a request's headers as API
//! Gateway's HTTP API hands them over: a header sent more than once arrives once, its values
//! joined by commas (payload format 2.0). `cargo lambda watch` alone passes only the first
//! value, so two `x-api-key` headers would authenticate with the first locally and be
//! refused in AWS; through this front both refuse them alike. Everything else is forwarded
//! as it came. Listens on 127.0.0.1 only; stops when the process that started it is gone, so
//! it never outlives `make dev` or a test.

use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue, COOKIE, HOST};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Upstream = Client<HttpConnector, Incoming>;
type Body = BoxBody<Bytes, hyper::Error>;

/// Joins each repeated header's values with commas, as API Gateway does. Cookies are left
/// alone: API Gateway hands them over apart, in `cookies`.
fn join_repeated(headers: &mut HeaderMap) {
    let repeated: Vec<_> = headers
        .keys()
        .filter(|name| *name != COOKIE && headers.get_all(*name).iter().nth(1).is_some())
        .cloned()
        .collect();
    for name in repeated {
        let joined: Vec<u8> = headers
            .get_all(&name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect::<Vec<_>>()
            .join(&b","[..]);
        match HeaderValue::from_bytes(&joined) {
            Ok(value) => {
                headers.insert(name, value);
            }
            Err(_) => {
                headers.remove(name);
            }
        }
    }
}

async fn forward(
    upstream: Upstream,
    port: u16,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    join_repeated(request.headers_mut());
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    *request.uri_mut() =
        Uri::try_from(format!("http://127.0.0.1:{port}{path}")).expect("a path the server parsed");
    request.headers_mut().remove(HOST);
    match upstream.request(request).await {
        Ok(response) => Ok(response.map(BodyExt::boxed)),
        // As API Gateway answers when its integration fails.
        Err(error) => {
            eprintln!("dev-gateway: cargo lambda watch did not answer: {error}");
            let mut response = Response::new(
                Full::new(Bytes::from_static(
                    br#"{"message":"Internal Server Error"}"#,
                ))
                .map_err(|never| match never {})
                .boxed(),
            );
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            Ok(response)
        }
    }
}

fn main() {
    let ports: Vec<u16> = std::env::args()
        .skip(1)
        .map(|arg| arg.parse().expect("a port number"))
        .collect();
    let [listen, upstream_port] = ports[..] else {
        eprintln!("usage: dev-gateway LISTEN_PORT UPSTREAM_PORT");
        std::process::exit(2);
    };
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(0);
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", listen))
            .await
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{listen}: {e}"));
        let upstream: Upstream = Client::builder(TokioExecutor::new()).build_http();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let service =
                    service_fn(move |request| forward(upstream.clone(), upstream_port, request));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_are_joined_as_api_gateway_joins_them() {
        let mut headers = HeaderMap::new();
        headers.append("x-api-key", HeaderValue::from_static("sk_test_a"));
        headers.append("x-api-key", HeaderValue::from_static("sk_test_b"));
        headers.append("idempotency-key", HeaderValue::from_static("order-1"));
        headers.append(COOKIE, HeaderValue::from_static("a=1"));
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        join_repeated(&mut headers);
        assert_eq!(headers.get_all("x-api-key").iter().count(), 1);
        assert_eq!(headers["x-api-key"], "sk_test_a,sk_test_b");
        assert_eq!(headers["idempotency-key"], "order-1");
        assert_eq!(
            headers.get_all(COOKIE).iter().count(),
            2,
            "cookies untouched"
        );
    }
}
