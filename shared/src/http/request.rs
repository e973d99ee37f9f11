//! Reading a request: its id, method, headers and body, into validated values.

use std::net::IpAddr;

use lambda_http::http::{header, HeaderMap, HeaderValue, Method};
use lambda_http::{Body, Request, RequestExt};

use super::body::{parse_body, InvalidRequest, JsonBody};
use super::error::ApiError;
use lambda_http::request::RequestContext;

use crate::domain::{Actor, IdempotencyKey, KeyId};

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The request's id, once [`remember_request_id`] has fixed it.
#[derive(Debug, Clone)]
struct RequestId(String);

/// The Lambda request id (the one in the function's CloudWatch logs), so a caller quoting it
/// leads straight to the log lines. Handlers called outside Lambda get a fresh random id,
/// the same one every time it is asked for once it is remembered.
pub fn request_id(request: &Request) -> String {
    if let Some(RequestId(id)) = request.extensions().get::<RequestId>() {
        return id.clone();
    }
    request
        .lambda_context_ref()
        .map(|context| context.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| {
            KeyId::generate()
                .map(|id| format!("local-{}", &id.as_str()[KeyId::PREFIX.len()..]))
                .unwrap_or_else(|_| "local".to_owned())
        })
}

/// Fixes the request's id for everything that asks for it later (its audit events, its
/// response), and answers it.
pub fn remember_request_id(request: &mut Request) -> String {
    let id = request_id(request);
    request.extensions_mut().insert(RequestId(id.clone()));
    id
}

/// The client's address as API Gateway saw it (`requestContext.http.sourceIp`); what a key's
/// `allowed_ips` is checked against. Never a header, which a client could set.
pub fn source_ip(request: &Request) -> Option<IpAddr> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.http.source_ip.as_deref()?.parse().ok()
        }
        _ => None,
    }
}

/// Who called, as API Gateway established it: the IAM principal's ARN on a route with
/// `AWS_IAM` authorization, `anonymous` otherwise. Taken from the request context, which API
/// Gateway writes and a caller cannot set; never the caller's access key.
pub fn caller(request: &Request) -> Actor {
    let arn = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|authorizer| authorizer.iam.as_ref())
            .and_then(|iam| iam.user_arn.as_deref()),
        _ => None,
    };
    arn.and_then(|arn| Actor::parse(arn).ok())
        .unwrap_or_else(Actor::anonymous)
}

/// The route's method, or a 405 naming it.
pub fn require_method(request: &Request, method: &'static Method) -> Result<(), ApiError> {
    if request.method() == method {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed {
            allow: method.as_str(),
        })
    }
}

/// A path parameter of the route (`id` of `/payments/{id}`), as API Gateway (and the
/// local router of `cargo lambda watch`) passes it.
pub fn path_parameter<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .path_parameters_ref()
        .and_then(|parameters| parameters.first(name))
}

/// Reads the request body as `T`, enforcing content type and size.
pub fn json_body<T: JsonBody>(request: &Request) -> Result<T, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(HeaderValue::as_bytes);
    let bytes: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    Ok(parse_body(content_type, bytes)?)
}

/// Reads the request body as `T`, or `T::default()` when there is none (`POST
/// /keys/{id}/roll` with no body rolls at once).
pub fn optional_json_body<T: JsonBody + Default>(request: &Request) -> Result<T, ApiError> {
    let empty = match request.body() {
        Body::Empty => true,
        Body::Text(text) => text.is_empty(),
        Body::Binary(bytes) => bytes.is_empty(),
        _ => true,
    };
    if empty {
        Ok(T::default())
    } else {
        json_body(request)
    }
}

/// A route that takes no query parameters refuses any, as an unknown body field is refused.
pub fn no_query_parameters(request: &Request) -> Result<(), ApiError> {
    let first = request
        .query_string_parameters_ref()
        .and_then(|parameters| parameters.iter().next().map(|(name, _)| name.to_owned()));
    match first {
        None => Ok(()),
        Some(name) => Err(InvalidRequest::new(
            super::body::InvalidRequestCode::ParameterUnknown,
            Some(&name),
            "This endpoint takes no query parameters.",
        )
        .into()),
    }
}

/// The `Idempotency-Key` header, if there is one. Sent twice, it is refused: API Gateway
/// joins a repeated header's values with commas, and no key contains one.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    const PARAM: &str = "Idempotency-Key";
    let single = || InvalidRequest::invalid_param(PARAM, "Send a single Idempotency-Key header.");
    let mut values = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) if value.as_bytes().contains(&b',') => Err(single().into()),
        (Some(value), None) => IdempotencyKey::parse(value.as_bytes())
            .map(Some)
            .map_err(|invalid| InvalidRequest::invalid_param(PARAM, invalid.message).into()),
        (Some(_), Some(_)) => Err(single().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_bytes(v).unwrap());
        }
        map
    }

    fn param_of(result: Result<Option<IdempotencyKey>, ApiError>) -> Option<String> {
        match result {
            Err(ApiError::InvalidRequest(invalid)) => invalid.param,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn the_idempotency_key_header_is_optional_single_and_bounded() {
        assert_eq!(idempotency_key(&HeaderMap::new()).unwrap(), None);
        let key = idempotency_key(&headers(&[b"order-1001"]))
            .unwrap()
            .unwrap();
        assert_eq!(key.as_str(), "order-1001");
        for bad in [&b""[..], &[b'k'; 256], b"caf\xc3\xa9", b"tab\there"] {
            assert_eq!(
                param_of(idempotency_key(&headers(&[bad]))).as_deref(),
                Some("Idempotency-Key"),
                "{bad:?}"
            );
        }
        // Repeated, as a client sends it and as API Gateway joins it.
        for repeated in [&[&b"a"[..], b"b"][..], &[b"a,b"], &[b"order-1, order-2"]] {
            assert_eq!(
                param_of(idempotency_key(&headers(repeated))).as_deref(),
                Some("Idempotency-Key"),
                "{repeated:?}"
            );
        }
    }
}
