// Benchmark peer: the create-payment function (POST /payments) as the stack this service
// replaced would have written it, on Node.js 20 with the AWS SDK for JavaScript v3. It does
// what functions/create-payment does (shared/src for the details), with the same requests to
// DynamoDB, the same items, the same responses, logs and metrics, so the benchmark can run
// both under bench-runtime-api against the same DynamoDB Local and compare them.
//
// One process, one execution environment: init (config, client, one warm-up call), then the
// Lambda Runtime API loop, written here with node:http (see README.md for how this differs
// from AWS's managed Node 20 runtime). Needs Node.js 20.15 or later (zlib.crc32): on an older
// one, init fails (/init/error).
//
// tools/bench/peer_parity.py checks it answers as the Rust function does, case by case (run
// by `scripts/bench.sh --smoke`, so by `make test`).
//
// Simplified against the Rust function, on paths the benchmark never takes:
// - The body is JSON.parse'd, then checked: an object, its fields in order (an unknown one or
//   a wrong type stops there), the missing ones, then the amount, currency and description
//   rules. What serde sees in the text and a parsed value no longer shows: a duplicate field
//   is not refused (the last value counts); a positional array (`[1250, "USD"]`), which serde
//   reads as the struct, is not an object; any syntax error is "not valid JSON", even after a
//   field serde refuses first, and so is content after the object (serde: "must contain a
//   single JSON object"); names like array indices ("0") come first in a parsed object; an
//   integer written as a float (`1e3`) is that integer (serde: "must be an integer"), and an
//   integer past 2^53 its nearest double; a lone surrogate escape (`"\ud800"`) is accepted.
// - RUST_LOG: only a bare level (`info`, `warn`, ...) is understood; per-target directives are
//   ignored (the level defaults to info, as in Rust).
// - A base64-encoded event body is decoded as UTF-8 with replacement characters; Rust's JSON
//   parser refuses invalid UTF-8 inside strings.
// - Stored timestamps are checked by an RFC 3339 pattern and calendar ranges (the `time` crate
//   is stricter on leap seconds); stored numbers by a decimal pattern.
// - The 500/503 log line's `error` carries the SDK error's name and message, not the Rust
//   SDK's error-context chain.
// - Only API Gateway HTTP API (payload 2.0) events are read; the other event sources
//   lambda_http reads (REST API v1, ALB, WebSocket) go to /invocation/{id}/error, as an event
//   Rust cannot read does. So do exceptions that are bugs (not the API's own errors), as a
//   Rust panic does through lambda_runtime.
// - A configuration error at init is posted to /init/error before the process exits, as AWS's
//   managed runtime does; Rust's main returns the error before lambda_runtime starts, and
//   only exits.
// Differences that come with the SDK, not with this code: standard retries back off from
// 100 ms (500 ms when throttled) where the Rust SDK's start at 1 s (same attempts, shorter
// waits on failures); the attempt timeout (`requestTimeout`) runs until the response's
// headers, the Rust one until the response is read.

import http from "node:http";
import { createHash, randomFillSync } from "node:crypto";
// Not a named import: on a Node without zlib.crc32, init says so (`init`).
import zlib from "node:zlib";
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";

// --------------------------------------------------------------------------------------------
// Logs: JSON lines like tracing-subscriber's (shared/src/telemetry.rs) at RUST_LOG's level.

const LEVELS = { off: 0, error: 1, warn: 2, info: 3, debug: 4, trace: 5 };

function configuredLevel() {
  const text = (process.env.RUST_LOG ?? process.env.AWS_LAMBDA_LOG_LEVEL ?? "").trim().toLowerCase();
  let level = LEVELS.info;
  for (const directive of text.split(",")) {
    const name = directive.trim();
    if (Object.hasOwn(LEVELS, name)) level = LEVELS[name];
  }
  return level;
}

const LOG_LEVEL = configuredLevel();

/** RFC 3339 UTC with microseconds, as tracing-subscriber writes its timestamps. */
function logTimestamp() {
  const now = performance.timeOrigin + performance.now();
  const ms = Math.floor(now);
  const micros = Math.floor((now - ms) * 1000);
  return new Date(ms).toISOString().slice(0, -1) + String(micros).padStart(3, "0") + "Z";
}

/** One log line: `fields` in order after the message, then the request's span, if any. */
function log(level, name, message, fields, span) {
  if (LEVELS[level] > LOG_LEVEL) return;
  const line = { timestamp: logTimestamp(), level: name, message, ...fields };
  if (span) line.span = spanFields(span);
  process.stdout.write(JSON.stringify(line) + "\n");
}

/** The request span's recorded fields, in the order tracing-subscriber prints them. */
function spanFields(span) {
  const fields = {};
  if (span.accountId !== undefined) fields.account_id = span.accountId;
  if (span.keyPrefix !== undefined) fields.key_prefix = span.keyPrefix;
  fields.operation = span.operation;
  fields.request_id = span.requestId;
  fields.name = "request";
  return fields;
}

const info = (message, fields, span) => log("info", "INFO", message, fields, span);
const warn = (message, fields, span) => log("warn", "WARN", message, fields, span);
const error = (message, fields, span) => log("error", "ERROR", message, fields, span);

// --------------------------------------------------------------------------------------------
// Configuration (shared/src/config.rs)

const ATTEMPT_TIMEOUT_MS = 2000;
const OPERATION_TIMEOUT_MS = 5000;
const CONNECT_TIMEOUT_MS = 1000;
const MAX_ATTEMPTS = 3;

function configFromEnv() {
  const required = (name) => {
    const value = process.env[name];
    if (value === undefined || value.trim() === "") {
      throw new Error(`environment variable ${name} must be set`);
    }
    return value;
  };
  const environment = required("API_KEY_ENVIRONMENT");
  if (environment !== "test" && environment !== "live") {
    throw new Error(
      `API_KEY_ENVIRONMENT: unknown key environment ${JSON.stringify(environment)}: expected test or live`,
    );
  }
  const endpoint = process.env.DYNAMODB_ENDPOINT;
  return {
    clientsTable: required("CLIENTS_TABLE"),
    paymentsTable: required("PAYMENTS_TABLE"),
    auditTable: required("AUDIT_TABLE"),
    keyEnvironment: environment,
    endpoint: endpoint !== undefined && endpoint.trim() !== "" ? endpoint : undefined,
  };
}

/** The client with the Rust client's timeouts and retries (`dynamodb_client`). The SDK's
 * operation timeout has no client setting in JS: `send` below gives each call an abort signal
 * for it. With an endpoint override (DynamoDB Local) it supplies a region and the Rust SDK's
 * placeholder test credentials when none are set. */
function dynamodbClient(endpoint) {
  const options = {
    maxAttempts: MAX_ATTEMPTS,
    retryMode: "standard",
    requestHandler: {
      connectionTimeout: CONNECT_TIMEOUT_MS,
      // Per attempt, and an error rather than the handler's default warning.
      requestTimeout: ATTEMPT_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    },
  };
  const region = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION;
  if (region) options.region = region;
  if (endpoint !== undefined) {
    options.endpoint = endpoint;
    if (!region) options.region = "us-east-1";
    if (process.env.AWS_ACCESS_KEY_ID === undefined) {
      // aws_credential_types::Credentials::for_tests_with_session_token()
      options.credentials = {
        accessKeyId: "ANOTREAL",
        secretAccessKey: "notrealrnrELgWzOk3IfjzDKtFBhDby",
        sessionToken: "notarealsessiontoken",
      };
    }
  }
  return new DynamoDBClient(options);
}

// --------------------------------------------------------------------------------------------
// Errors: ApiError and its one mapping to a response (shared/src/http/error.rs), StoreError
// (shared/src/store/error.rs).

const MAX_BODY_BYTES = 16 * 1024;

class ApiError extends Error {
  /** @param {object} spec status, type, code, message (public), display (for the log), and
   * optionally param, paymentId, headers, source (a StoreError), reason (an auth failure). */
  constructor(spec) {
    super(spec.display);
    Object.assign(this, spec);
  }
}

const missingApiKey = () =>
  new ApiError({
    status: 401, type: "authentication_error", code: "missing_api_key",
    message: "No API key provided. Send your API key in the x-api-key header.",
    display: "the request did not authenticate: missing", refusal: "missing",
  });

/** @param {string} reason an `AuthFailure` name (the metrics' Reason label, the log's reason). */
const invalidApiKey = (reason) =>
  new ApiError({
    status: 401, type: "authentication_error", code: "invalid_api_key",
    message: "Invalid API key provided.",
    display: `the request did not authenticate: ${reason}`, refusal: reason,
  });

/** At most 64 characters of a name the caller sent, cut with an ellipsis. */
const echoed = (name) => {
  const chars = [...name];
  return chars.length > 64 ? chars.slice(0, 64).join("") + "…" : name;
};

const invalidRequest = (code, param, message) =>
  new ApiError({
    status: 400, type: "invalid_request_error", code, message, param,
    display: `invalid request (${code}): ${message}`,
  });

const invalidParam = (param, message) => invalidRequest("parameter_invalid", param, message);

const unsupportedMediaType = () =>
  new ApiError({
    status: 415, type: "invalid_request_error", code: "unsupported_media_type",
    message: "Request bodies must be JSON, sent with content-type: application/json.",
    display: "the request body is not JSON by its content type",
  });

const payloadTooLarge = () =>
  new ApiError({
    status: 413, type: "invalid_request_error", code: "payload_too_large",
    message: `The request body must not exceed ${MAX_BODY_BYTES} bytes.`,
    display: `the request body exceeds ${MAX_BODY_BYTES} bytes`,
  });

const methodNotAllowed = () =>
  new ApiError({
    status: 405, type: "invalid_request_error", code: "method_not_allowed",
    message: "This endpoint only accepts POST.", display: "method not allowed",
    headers: { allow: "POST" },
  });

const idempotencyKeyReused = () =>
  new ApiError({
    status: 422, type: "idempotency_error", code: "idempotency_key_reused",
    message:
      "This Idempotency-Key was already used with a different request. Use a new key for a new payment.",
    param: "Idempotency-Key", display: "idempotency key reused with a different request",
  });

const unavailable = (source) =>
  new ApiError({
    status: 503, type: "api_error", code: "service_unavailable",
    message: "The service is temporarily unavailable. Retry the request.",
    display: "a dependency is temporarily unavailable", headers: { "retry-after": "1" }, source,
  });

const paymentOutcomeUnknown = (paymentId, idempotent, source) =>
  new ApiError({
    status: 503, type: "api_error", code: "payment_outcome_unknown",
    message: idempotent
      ? `The payment ${paymentId} may or may not have been recorded. Retry with the same ` +
        "Idempotency-Key: it cannot create a second payment."
      : `The payment ${paymentId} may or may not have been recorded. Look it up with ` +
        `GET /payments/${paymentId} before retrying: a retry without an Idempotency-Key ` +
        "can create a second payment.",
    paymentId, display: `the write of payment ${paymentId} may or may not have happened`,
    headers: { "retry-after": "1" }, source,
  });

const unexpected = (source) =>
  new ApiError({
    status: 500, type: "api_error", code: "internal_error",
    message: "An unexpected error occurred.", display: "an unexpected error occurred", source,
  });

class StoreError extends Error {
  /** @param {string} kind unavailable | outcome_unknown | throttled | corrupt | unexpected */
  constructor(kind, display, cause) {
    super(display);
    this.kind = kind;
    this.cause = cause;
  }
}

const STORE_DISPLAY = {
  unavailable: "storage unavailable; nothing was written",
  outcome_unknown: "storage outcome unknown; the write may have happened",
  throttled: "storage throttled; nothing was written",
  unexpected: "unexpected storage error",
};

const storeError = (kind, cause) => new StoreError(kind, STORE_DISPLAY[kind], cause);

const corrupt = (entity, id, attribute) =>
  new StoreError("corrupt", `stored ${entity} item ${id} is malformed (${attribute})`);

/** StoreError -> ApiError, as `From<StoreError> for ApiError`. */
function fromStore(err) {
  return err.kind === "corrupt" || err.kind === "unexpected" ? unexpected(err) : unavailable(err);
}

/** The whole cause chain, one cause per line, as the Rust errors' Debug prints it. */
function chain(err) {
  let text = err.display ?? err.message;
  for (let cause = err.source ?? err.cause; cause; cause = cause.cause) {
    const line = cause instanceof StoreError ? cause.message : `${cause.name}: ${cause.message}`;
    text += `\n  caused by: ${line}`;
  }
  return text;
}

// --------------------------------------------------------------------------------------------
// DynamoDB calls and what their failures mean (shared/src/store/dynamo.rs)

const THROTTLING_CODES = new Set([
  "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
]);
const SERVER_ERROR_CODES = new Set(["InternalServerError", "ServiceUnavailable"]);
const NEVER_CONNECTED_CODES = new Set([
  "ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL",
]);

/** Whether DynamoDB answered (an SDK service exception), rather than the call failing on the
 * way (timeout, connection, abort). */
const answered = (err) =>
  typeof err?.$fault === "string" && err.$metadata?.httpStatusCode !== undefined;

/** `classify`: what a failed call means for the data. `call` is read, write (may have been
 * applied) or write_not_applied (every attempt shows it was not). */
function classify(err, call) {
  let meaning;
  if (err?.cutShort) {
    // The request's own deadline ended the call: shared/src/http/deadline.rs.
    return storeError(call === "read" ? "unavailable" : "outcome_unknown", err);
  } else if (!answered(err)) {
    meaning = "lost";
  } else if (THROTTLING_CODES.has(err.name)) {
    meaning = "throttled";
  } else if (SERVER_ERROR_CODES.has(err.name) || err.$metadata.httpStatusCode >= 500) {
    meaning = "lost";
  } else {
    meaning = "unexpected";
  }
  if (meaning === "lost") return storeError(call === "write" ? "outcome_unknown" : "unavailable", err);
  if (meaning === "throttled") return storeError(call === "write" ? "outcome_unknown" : "throttled", err);
  return storeError("unexpected", err);
}

/** Whether a failed attempt never connected, so nothing was sent on it. */
const neverConnected = (err) =>
  NEVER_CONNECTED_CODES.has(err?.code) ||
  (err?.name === "TimeoutError" && /did not establish a connection/.test(err.message ?? ""));

const READ_OPERATIONS = new Set(["GetItem", "Query", "Scan", "TransactGetItems", "BatchGetItem"]);

/** What the client spent in one scope (shared/src/store/usage.rs `CallLog`): each attempt
 * sent, by operation, retries included, and the capacity units DynamoDB reported. */
const newUsage = () => ({ attempts: [], readUnits: 0, writeUnits: 0 });
const usageIsEmpty = (u) => u.attempts.length === 0 && u.readUnits === 0 && u.writeUnits === 0;

/** The calls made outside any request (the warm-up during init, a key's use recorded in the
 * background) since the last request's metrics line: `usage::take_outside`. */
let outside = newUsage();
function takeOutside() {
  const taken = outside;
  outside = newUsage();
  return taken;
}

/** The `Usage` interceptor, and for a write `WriteAttempts`, on one command: asks for the
 * consumed capacity, then, on every attempt (inside the SDK's retries), records the attempt
 * as it is sent and the capacity its answer reports, into `usage` (the request's log, or
 * `outside`). With `attempts`, also watches whether an attempt may have reached DynamoDB and
 * been applied: a 4xx is a request DynamoDB did not act on. */
function meter(command, operation, usage, attempts) {
  command.input.ReturnConsumedCapacity ??= "TOTAL";
  command.middlewareStack.add(
    (next) => async (args) => {
      (usage ?? outside).attempts.push(operation);
      let result;
      try {
        result = await next(args);
      } catch (err) {
        if (attempts !== undefined) {
          const status = err?.$metadata?.httpStatusCode ?? err?.$response?.statusCode;
          const notApplied = status !== undefined ? status >= 400 && status < 500 : neverConnected(err);
          if (!notApplied) attempts.mayHaveApplied = true;
        }
        throw err;
      }
      if (attempts !== undefined) {
        const status = result.response?.statusCode;
        if (!(status >= 400 && status < 500)) attempts.mayHaveApplied = true;
      }
      // One capacity on single-item calls and queries, one per table on the others.
      const consumed = result.output?.ConsumedCapacity;
      const units = Array.isArray(consumed)
        ? consumed.reduce((sum, c) => sum + (c?.CapacityUnits ?? 0), 0)
        : consumed?.CapacityUnits ?? 0;
      if (units > 0) {
        const log = usage ?? outside;
        if (READ_OPERATIONS.has(operation)) log.readUnits += units;
        else log.writeUnits += units;
      }
      return result;
    },
    { step: "deserialize", priority: "high", name: "paymentsUsage" },
  );
}

let client; // created at init
let config;

/** One call, metered (`meter`), ended by the SDK's operation timeout or the request's
 * deadline (epoch ms), whichever comes first; a call the deadline ends is marked `cutShort`.
 * `usage` is the request's log; none for calls outside a request. */
async function send(command, operation, deadline, usage, attempts) {
  meter(command, operation, usage, attempts);
  const budget = deadline - Date.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), Math.max(0, Math.min(OPERATION_TIMEOUT_MS, budget)));
  try {
    return await client.send(command, { abortSignal: controller.signal });
  } catch (err) {
    if (controller.signal.aborted && budget < OPERATION_TIMEOUT_MS && err && typeof err === "object") {
      err.cutShort = true;
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** A call of the current request: bounded by its deadline and timed for its metrics. */
async function bounded(request, run) {
  const started = performance.now();
  try {
    return await run();
  } finally {
    request.calls.push(performance.now() - started);
  }
}

const WARM_UP_PK = "WARMUP#connection";

/** `DynamoStore::warm_up(WarmUp::Read)`: one eventually consistent GetItem of a key that never
 * exists, so the first request does not pay for connection set-up. */
async function warmUp() {
  const started = performance.now();
  let failure;
  try {
    await send(
      new GetItemCommand({ TableName: config.clientsTable, Key: { pk: { S: WARM_UP_PK } } }),
      "GetItem", Infinity,
    );
  } catch (err) {
    if (!answered(err)) failure = err;
  }
  const elapsed_ms = Math.floor(performance.now() - started);
  if (failure === undefined) {
    info("connection warmed", { elapsed_ms, kind: "Read" });
  } else {
    warn("warm-up call failed", { elapsed_ms, kind: "Read", error: `${failure.name}: ${failure.message}` });
  }
}

// --------------------------------------------------------------------------------------------
// Domain: ids, keys, time, payments (shared/src/domain)

const ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_RANDOM_CHARS = 20;
const idPattern = (prefix) => new RegExp(`^${prefix}[A-Za-z0-9]{${ID_RANDOM_CHARS}}$`);
const ACCOUNT_ID = idPattern("acct_");
const PAYMENT_ID = idPattern("pay_");
const KEY_ID = idPattern("key_");
const randomBytes = Buffer.alloc(32);

/** 20 unbiased base62 characters from the OS CSPRNG (rejection sampling below 248). */
function randomId(prefix) {
  let id = prefix;
  while (id.length < prefix.length + ID_RANDOM_CHARS) {
    randomFillSync(randomBytes);
    for (let i = 0; i < 32 && id.length < prefix.length + ID_RANDOM_CHARS; i++) {
      if (randomBytes[i] < 248) id += ID_ALPHABET[randomBytes[i] % 62];
    }
  }
  return id;
}

const ID_MODULUS = 62n ** 20n;

/** `payment_id_for`: the id of the payment `account` creates with Idempotency-Key `key`. */
function paymentIdFor(account, key) {
  const digest = createHash("sha256")
    .update("payment-id/v1\0").update(account).update("\0").update(key).digest();
  let value = ((digest.readBigUInt64BE(0) << 64n) | digest.readBigUInt64BE(8)) % ID_MODULUS;
  const chars = new Array(ID_RANDOM_CHARS);
  for (let i = ID_RANDOM_CHARS - 1; i >= 0; i--) {
    chars[i] = ID_ALPHABET[Number(value % 62n)];
    value /= 62n;
  }
  return "pay_" + chars.join("");
}

/** `fingerprint`: SHA-256 over the canonical form of a validated payment request, in hex. */
function fingerprint(payment) {
  const hash = createHash("sha256").update("payment-request/v1\0");
  const amount = Buffer.alloc(8);
  amount.writeBigInt64BE(BigInt(payment.amount));
  hash.update(amount).update(payment.currency);
  if (payment.description === null) {
    hash.update(Buffer.of(0));
  } else {
    const text = Buffer.from(payment.description, "utf8");
    const head = Buffer.alloc(9);
    head[0] = 1;
    head.writeBigUInt64BE(BigInt(text.length), 1);
    hash.update(head).update(text);
  }
  return hash.digest("hex");
}

const KEY_LENGTH = 57;
const ENV_PREFIX_CHARS = 8;
const SECRET_CHARS = 43;
const BASE64URL_SECRET = /^[A-Za-z0-9_-]{43}$/;
const BASE64URL_CHECKSUM = /^[A-Za-z0-9_-]{6}$/;
const KEY_PREFIXES = { sk_test_: "test", sk_live_: "live" };

/** `ApiKey::parse`: everything that can be checked without a database. Returns the failure
 * reason (an AuthFailure name), or null for a key that may exist. */
function checkApiKey(raw, expected) {
  if (raw.length !== KEY_LENGTH || !/^[\x00-\x7f]*$/.test(raw)) return "malformed";
  const environment = KEY_PREFIXES[raw.slice(0, ENV_PREFIX_CHARS)];
  if (environment === undefined) return "malformed";
  const secret = raw.slice(ENV_PREFIX_CHARS, ENV_PREFIX_CHARS + SECRET_CHARS);
  // Canonical base64url only: the 43rd character's 2 padding bits must be zero.
  if (!BASE64URL_SECRET.test(secret) || Buffer.from(secret, "base64url").toString("base64url") !== secret) {
    return "malformed";
  }
  const given = raw.slice(ENV_PREFIX_CHARS + SECRET_CHARS);
  if (!BASE64URL_CHECKSUM.test(given)) return "malformed";
  const sum = Buffer.alloc(4);
  // CRC-32 (IEEE, as crc32fast) of the ASCII prefix and secret.
  sum.writeUInt32BE(zlib.crc32(raw.slice(0, ENV_PREFIX_CHARS + SECRET_CHARS)));
  if (sum.toString("base64url") !== given) return "bad_checksum";
  if (environment !== expected) return "wrong_environment";
  return null;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/** `Timestamp::parse`: an RFC 3339 date-time at any offset, to epoch milliseconds
 * (truncated), whose UTC instant falls in the years 0000 to 9999; null otherwise. */
function parseTimestamp(text) {
  const m = RFC3339.exec(text);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const monthDays = [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28,
    31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (month < 1 || month > 12 || day < 1 || day > monthDays[month - 1] || hour > 23 ||
      minute > 59 || second > 59) return null;
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, "0"));
  let offset = 0;
  if (m[8] !== undefined) {
    const [oh, om] = [Number(m[9]), Number(m[10])];
    if (oh > 23 || om > 59) return null;
    offset = (m[8] === "-" ? -1 : 1) * (oh * 60 + om) * 60000;
  }
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, millis));
  date.setUTCFullYear(year);
  const at = date.getTime() - offset;
  const utcYear = new Date(at).getUTCFullYear();
  return utcYear >= 0 && utcYear <= 9999 ? at : null;
}

const rfc3339 = (ms) => new Date(ms).toISOString();

// ISO 4217 codes the API accepts (shared/src/domain/currency.rs).
const CURRENCIES = new Set(
  ("AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN " +
   "BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP " +
   "GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS " +
   "KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR " +
   "MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD " +
   "RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP " +
   "TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW " +
   "ZWG").split(" "),
);

/** `Currency::parse`: any letter case in, the upper-case code out; null if not accepted. */
function parseCurrency(raw) {
  if (!/^[A-Za-z]{3}$/.test(raw)) return null;
  const code = raw.toUpperCase();
  return CURRENCIES.has(code) ? code : null;
}

const AMOUNT_MIN = 1;
const AMOUNT_MAX = 99_999_999;
const DESCRIPTION_MAX_CHARS = 500;

/** At most `max` Unicode scalar values (Rust's `chars().count()`). */
function withinChars(text, max) {
  if (text.length <= max) return true;
  let count = 0;
  for (const _ of text) if (++count > max) return false;
  return true;
}

// Printable ASCII without a comma: a repeated header arrives joined by commas.
const isIdempotencyKey = (value) =>
  value.length >= 1 && value.length <= 255 && /^[\x20-\x2b\x2d-\x7e]*$/.test(value);

// --------------------------------------------------------------------------------------------
// The request body (shared/src/http/body.rs): `CreatePaymentRequest` (deny_unknown_fields),
// read with JSON.parse, then checked field by field in the body's order as serde meets them
// (an unknown field or a wrong type stops it), then the missing fields, then `validate`.

const FIELD_TYPES = { amount: "an integer", currency: "a string", description: "a string or null" };
const I64_BOUND = 2 ** 63;
/** Whether serde reads the value as the field's type. `-0` is a float to serde_json. */
const FIELD_CHECKS = {
  amount: (v) => Number.isInteger(v) && v >= -I64_BOUND && v < I64_BOUND && !Object.is(v, -0),
  currency: (v) => typeof v === "string",
  description: (v) => v === null || typeof v === "string",
};

/** `parse_json::<CreatePaymentRequest>`: {amount, currency, description} or throws an
 * ApiError (400). */
function parsePaymentBody(text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalidRequest("invalid_json", undefined, "The request body is not valid JSON.");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw invalidRequest("invalid_json", undefined, "The request body must be a JSON object.");
  }
  for (const [name, value] of Object.entries(body)) {
    if (!Object.hasOwn(FIELD_TYPES, name)) {
      // serde's message quotes the name in backticks; the first quoted part is taken, and
      // echoed at most 64 characters (`shared::http::body::echoed`).
      const param = echoed(name.split("`")[0]);
      throw invalidRequest("parameter_unknown", param, `Received unknown parameter: ${param}`);
    }
    if (!FIELD_CHECKS[name](value)) throw invalidParam(name, `${name} must be ${FIELD_TYPES[name]}.`);
  }
  for (const name of ["amount", "currency"]) {
    if (!Object.hasOwn(body, name)) {
      throw invalidRequest("parameter_missing", name, `Missing required parameter: ${name}`);
    }
  }
  return { amount: body.amount, currency: body.currency, description: body.description ?? null };
}

/** `CreatePaymentRequest::validate`. */
function validatePayment(fields) {
  if (fields.amount < AMOUNT_MIN || fields.amount > AMOUNT_MAX) {
    throw invalidParam("amount",
      `amount must be an integer from ${AMOUNT_MIN} to ${AMOUNT_MAX} in the currency's minor unit.`);
  }
  const currency = parseCurrency(fields.currency);
  if (currency === null) {
    throw invalidParam("currency", "currency must be an ISO 4217 alphabetic code such as USD or EUR.");
  }
  if (fields.description !== null && !withinChars(fields.description, DESCRIPTION_MAX_CHARS)) {
    throw invalidParam("description", `description must be at most ${DESCRIPTION_MAX_CHARS} characters.`);
  }
  return { amount: fields.amount, currency, description: fields.description };
}

// --------------------------------------------------------------------------------------------
// Request reading (shared/src/http/request.rs)

/** Every value of a header, matched in any letter case, as lambda_http's HeaderMap holds them:
 * a string value replaces what an earlier spelling of the name gave (API Gateway sends one
 * string per name), an array of strings adds each. */
function headerValues(headers, lowerName) {
  let values = [];
  if (headers) {
    for (const name in headers) {
      if (name.toLowerCase() !== lowerName) continue;
      const value = headers[name];
      if (Array.isArray(value)) values.push(...value.map(String));
      else values = [String(value)];
    }
  }
  return values;
}

function jsonMediaType(value) {
  return value !== undefined && value.split(";")[0].trim().toLowerCase() === "application/json";
}

/** `json_body`: content type, size, then the body itself. */
function paymentBody(event, contentType) {
  if (!jsonMediaType(contentType)) throw unsupportedMediaType();
  let text = event.body ?? "";
  let bytes;
  if (event.isBase64Encoded) {
    const decoded = Buffer.from(text, "base64");
    bytes = decoded.length;
    text = decoded.toString("utf8");
  } else {
    bytes = Buffer.byteLength(text, "utf8");
  }
  if (bytes > MAX_BODY_BYTES) throw payloadTooLarge();
  return parsePaymentBody(text);
}

// --------------------------------------------------------------------------------------------
// Items (shared/src/store/items/key.rs, payment.rs)

const KEY_USE_INTERVAL_MS = 3600 * 1000;
const NEW_ITEM_ONLY = "attribute_not_exists(pk)";

/** A string attribute: absent -> undefined; present with another type -> corrupt. */
function stringAttribute(item, name, entity, id) {
  const value = item[name];
  if (value === undefined) return undefined;
  if (typeof value.S !== "string") throw corrupt(entity, id, name);
  return value.S;
}

function required(item, name, entity, id, parse) {
  const text = stringAttribute(item, name, entity, id);
  const value = text === undefined ? null : parse(text);
  if (value === null) throw corrupt(entity, id, name);
  return value;
}

function optional(item, name, entity, id, parse) {
  const text = stringAttribute(item, name, entity, id);
  if (text === undefined) return null;
  const value = parse(text);
  if (value === null) throw corrupt(entity, id, name);
  return value;
}

const matching = (pattern) => (text) => (pattern.test(text) ? text : null);
const oneOf = (...values) => (text) => (values.includes(text) ? text : null);

/** `items::key::record_from_item`. */
function keyRecord(item) {
  const id = typeof item.key_id?.S === "string" ? item.key_id.S : "?";
  const read = (name, parse) => required(item, name, "key", id, parse);
  return {
    keyId: read("key_id", matching(KEY_ID)),
    accountId: read("account_id", matching(ACCOUNT_ID)),
    prefix: read("prefix", matching(/^sk_(?:test|live)_[A-Za-z0-9_-]{4}$/)),
    status: read("status", oneOf("active", "revoked")),
    expiresAt: optional(item, "expires_at", "key", id, parseTimestamp),
    accountStatus: read("account_status", oneOf("active", "inactive")),
    createdAt: read("created_at", parseTimestamp),
    lastUsedAt: optional(item, "last_used_at", "key", id, parseTimestamp),
  };
}

/** `items::payment::new_item`. */
function paymentItem(payment, requestFingerprint) {
  const createdAt = rfc3339(payment.createdAt);
  const item = {
    pk: { S: payment.id },
    entity: { S: "payment" },
    client_id: { S: payment.clientId },
    list_key: { S: `${createdAt}#${payment.id}` },
    amount: { N: String(payment.amount) },
    currency: { S: payment.currency },
    status: { S: payment.status },
    created_at: { S: createdAt },
    request_fingerprint: { S: requestFingerprint },
  };
  if (payment.description !== null) item.description = { S: payment.description };
  if (payment.idempotencyKey !== null) item.idempotency_key = { S: payment.idempotencyKey };
  return item;
}

/** `items::payment::stored_from_item`. */
function storedPayment(item) {
  const id = typeof item.pk?.S === "string" ? item.pk.S : "?";
  const read = (name, parse) => required(item, name, "payment", id, parse);
  const amountText = item.amount?.N;
  const amount = typeof amountText === "string" && /^[+-]?\d{1,19}$/.test(amountText) ? Number(amountText) : NaN;
  if (!(amount >= AMOUNT_MIN && amount <= AMOUNT_MAX)) throw corrupt("payment", id, "amount");
  return {
    payment: {
      id: read("pk", matching(PAYMENT_ID)),
      clientId: read("client_id", matching(ACCOUNT_ID)),
      amount,
      currency: read("currency", parseCurrency),
      description: optional(item, "description", "payment", id,
        (text) => (withinChars(text, DESCRIPTION_MAX_CHARS) ? text : null)),
      status: read("status", oneOf("pending")),
      createdAt: read("created_at", parseTimestamp),
      idempotencyKey: optional(item, "idempotency_key", "payment", id,
        (text) => (isIdempotencyKey(text) ? text : null)),
    },
    requestFingerprint: read("request_fingerprint", matching(/^[0-9a-f]{64}$/)),
  };
}

const samePayment = (a, b) =>
  a.id === b.id && a.clientId === b.clientId && a.amount === b.amount && a.currency === b.currency &&
  a.description === b.description && a.status === b.status && a.createdAt === b.createdAt &&
  a.idempotencyKey === b.idempotencyKey;

// --------------------------------------------------------------------------------------------
// Store calls of a request

/** `FindKey`: the key item by digest, strongly consistent. */
async function findKey(request, digest) {
  const output = await bounded(request, async () => {
    try {
      return await send(new GetItemCommand({
        TableName: config.clientsTable,
        Key: { pk: { S: `KEY#${digest}` } },
        ConsistentRead: true,
      }), "GetItem", request.deadline, request.usage);
    } catch (err) {
      throw classify(err, "read");
    }
  });
  return output.Item === undefined ? null : keyRecord(output.Item);
}

/** `InsertPayment`: one conditional write that never overwrites; an existing item comes back
 * with the failed condition, so a replay costs no extra round trip. */
async function insertPayment(request, payment, requestFingerprint) {
  return bounded(request, async () => {
    const command = new PutItemCommand({
      TableName: config.paymentsTable,
      Item: paymentItem(payment, requestFingerprint),
      ConditionExpression: NEW_ITEM_ONLY,
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    });
    const attempts = { mayHaveApplied: false };
    try {
      await send(command, "PutItem", request.deadline, request.usage, attempts);
      return { created: true };
    } catch (err) {
      if (err?.name === "ConditionalCheckFailedException") {
        if (err.Item === undefined) {
          throw storeError("unexpected", new Error(`condition check on payment ${payment.id} returned no item`));
        }
        return { created: false, stored: storedPayment(err.Item) };
      }
      throw classify(err, attempts.mayHaveApplied ? "write" : "write_not_applied");
    }
  });
}

/** `KeyUse::record_in_background`: the key's use, at most once an hour, never awaited by the
 * request and never failing it (not bounded by its deadline, not in its metrics). */
function recordKeyUseInBackground(digest, at, span) {
  send(new UpdateItemCommand({
    TableName: config.clientsTable,
    Key: { pk: { S: `KEY#${digest}` } },
    UpdateExpression: "SET #used = :at",
    ConditionExpression: "attribute_exists(pk) AND (attribute_not_exists(#used) OR #used < :stale)",
    ExpressionAttributeNames: { "#used": "last_used_at" },
    ExpressionAttributeValues: {
      ":at": { S: rfc3339(at) },
      ":stale": { S: rfc3339(at - KEY_USE_INTERVAL_MS) },
    },
  }), "UpdateItem", Infinity).catch((err) => {
    if (err?.name === "ConditionalCheckFailedException") return;
    warn("key use not recorded", { error: chain(classify(err, "write")) }, span);
  });
}

// --------------------------------------------------------------------------------------------
// The handler (functions/create-payment/src/lib.rs)

const MAX_DRAWS = 3;
const RESPONSE_MARGIN_MS = 250;
const DEFAULT_BUDGET_MS = 9750;
const EARLIEST_DEADLINE_MS = 1_000_000_000_000;

/** `authenticate`: the x-api-key header, and only that header. */
async function authenticate(request, headers, now) {
  const values = headerValues(headers, "x-api-key");
  if (values.length === 0) throw missingApiKey();
  if (values.length > 1) throw invalidApiKey("malformed");
  const raw = values[0];
  const failure = checkApiKey(raw, config.keyEnvironment);
  if (failure !== null) throw invalidApiKey(failure);
  const prefix = raw.slice(0, 12);
  const digest = createHash("sha256").update(raw).digest("hex");
  let record;
  try {
    record = await findKey(request, digest);
  } catch (err) {
    throw err instanceof StoreError ? fromStore(err) : err;
  }
  const refuse = (reason) => {
    info("api key refused", { key_prefix: prefix, reason }, request.span);
    return invalidApiKey(reason);
  };
  if (record === null) throw refuse("unknown_key");
  // `KeyLife::admits`: the key's own state first, then the account's.
  if (record.status === "revoked") throw refuse("key_revoked");
  if (record.expiresAt !== null && now >= record.expiresAt) throw refuse("key_expired");
  if (record.accountStatus !== "active") throw refuse("account_inactive");
  request.span.accountId = record.accountId;
  request.span.keyPrefix = prefix;
  const keyUseDue = record.lastUsedAt === null || record.lastUsedAt + KEY_USE_INTERVAL_MS <= now;
  return { accountId: record.accountId, digest, keyUseDue };
}

/** `idempotency_key`: the optional Idempotency-Key header. */
function idempotencyKey(headers) {
  const values = headerValues(headers, "idempotency-key");
  if (values.length === 0) return null;
  if (values.length > 1 || values[0].includes(",")) {
    throw invalidParam("Idempotency-Key", "Send a single Idempotency-Key header.");
  }
  if (!isIdempotencyKey(values[0])) {
    throw invalidParam(
      "Idempotency-Key",
      "Idempotency-Key must be 1 to 255 printable ASCII characters other than a comma.",
    );
  }
  return values[0];
}

const paymentBodyJson = (p) =>
  JSON.stringify({
    id: p.id, client_id: p.clientId, amount: p.amount, currency: p.currency,
    description: p.description, status: p.status, created_at: rfc3339(p.createdAt),
  });

/** The handler's outcome: {status, body (JSON text), headers, outcome} or throws an ApiError. */
async function createPayment(request, event) {
  if (event.requestContext?.http?.method !== "POST") throw methodNotAllowed();
  const headers = event.headers;
  const now = Date.now();
  const client = await authenticate(request, headers, now);
  if (client.keyUseDue) recordKeyUseInBackground(client.digest, now, request.span);
  const key = idempotencyKey(headers);
  const contentType = headerValues(headers, "content-type")[0];
  const fields = validatePayment(paymentBody(event, contentType));
  const requestFingerprint = fingerprint(fields);
  const payment = {
    id: key !== null ? paymentIdFor(client.accountId, key) : randomId("pay_"),
    clientId: client.accountId,
    amount: fields.amount,
    currency: fields.currency,
    description: fields.description,
    status: "pending",
    createdAt: now,
    idempotencyKey: key,
  };
  for (let draw = 1; ; draw++) {
    let outcome;
    try {
      outcome = await insertPayment(request, payment, requestFingerprint);
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      // The write was sent and may have been applied: say so, with the payment it targeted.
      // (Its cause is the call's own error, as `ApiError::PaymentOutcomeUnknown`'s source.)
      if (err.kind === "outcome_unknown") throw paymentOutcomeUnknown(payment.id, key !== null, err.cause);
      throw fromStore(err);
    }
    if (outcome.created) {
      info("payment created", {
        payment_id: payment.id, amount: payment.amount, currency: payment.currency,
        idempotent: key !== null,
      }, request.span);
      return { status: 201, body: paymentBodyJson(payment), outcome: "created" };
    }
    const stored = outcome.stored;
    if (key !== null) {
      // The id belongs to this account and key: the same request is a replay, another one a
      // misuse of the key.
      if (stored.requestFingerprint === requestFingerprint && stored.payment.clientId === payment.clientId) {
        info("payment replayed", { payment_id: stored.payment.id }, request.span);
        return {
          status: 201, body: paymentBodyJson(stored.payment), outcome: "replayed",
          headers: { "idempotent-replayed": "true" },
        };
      }
      info("idempotency key reused for another request", { payment_id: stored.payment.id }, request.span);
      throw idempotencyKeyReused();
    }
    if (samePayment(stored.payment, payment) && stored.requestFingerprint === requestFingerprint) {
      info("payment created (found on retry)", { payment_id: payment.id }, request.span);
      return { status: 201, body: paymentBodyJson(payment), outcome: "created" };
    }
    if (draw === MAX_DRAWS) {
      throw unexpected(new Error(`${MAX_DRAWS} random payment ids in a row were taken (last ${payment.id})`));
    }
    warn("random payment id taken; drawing again", { payment_id: payment.id, draw }, request.span);
    payment.id = randomId("pay_");
  }
}

/** An API Gateway HTTP API (payload 2.0) response, as lambda_http serializes it. */
function apiResponse(status, body, requestId, extra) {
  return {
    statusCode: status,
    headers: { "content-type": "application/json", "cache-control": "no-store", "x-request-id": requestId, ...extra },
    multiValueHeaders: {},
    body,
    isBase64Encoded: false,
    cookies: [],
  };
}

function errorResponse(err, requestId) {
  const body = { type: err.type, code: err.code, message: err.message };
  if (err.param !== undefined) body.param = err.param;
  if (err.paymentId !== undefined) body.payment_id = err.paymentId;
  body.request_id = requestId;
  return apiResponse(err.status, JSON.stringify({ error: body }), requestId, err.headers);
}

// --------------------------------------------------------------------------------------------
// Metrics: one CloudWatch EMF line per request (shared/src/http/metrics.rs), keys in the
// order serde_json writes them.

const NAMESPACE = (() => {
  const ns = process.env.METRICS_NAMESPACE;
  return ns !== undefined && ns.trim() !== "" && Buffer.byteLength(ns) <= 255 ? ns : "PaymentsApi";
})();
const ns = JSON.stringify(NAMESPACE);
const directive = (dimensions, metrics) =>
  `{"Dimensions":${dimensions},"Metrics":[${metrics.map(([name, unit]) => `{"Name":"${name}","Unit":"${unit}"}`).join(",")}],"Namespace":${ns}}`;
const REQUESTS_DIRECTIVE = directive('[["Function","StatusClass"],["Function","Outcome"],["StatusClass"]]',
  [["Requests", "Count"], ["Latency", "Milliseconds"]]);
const SPENT_METRICS = [["DynamoDbCalls", "Count"], ["DynamoDbAttempts", "Count"],
  ["DynamoDbReadUnits", "Count"], ["DynamoDbWriteUnits", "Count"]];
const CALLS_DIRECTIVE = directive('[["Function"]]', [["DynamoDbCallLatency", "Milliseconds"], ...SPENT_METRICS]);
const NO_CALLS_DIRECTIVE = directive('[["Function"]]', SPENT_METRICS);
const REFUSALS_DIRECTIVE = directive('[["Reason"],[]]', [["AuthRefusals", "Count"]]);
const COLD_DIRECTIVE = directive('[["Function"]]', [["ColdStart", "Count"]]);

/** An f64 as serde_json writes it (`1.0`, not `1`). */
const f64 = (x) => (Number.isInteger(x) ? `${x}.0` : String(x));

const statusClass = (status) =>
  status >= 200 && status <= 299 ? "2xx" : status >= 400 && status <= 499 ? "4xx" : status >= 500 && status <= 599 ? "5xx" : "other";

let coldStart = true;

function emfLine(record) {
  const calls = record.calls.slice(0, 100);
  let line = "{";
  if (record.refusal !== undefined) line += '"AuthRefusals":1,';
  if (record.coldStart) line += '"ColdStart":1,';
  const spent = record.usage;
  line += `"DynamoDbAttempts":${spent.attempts.length},`;
  if (calls.length > 0) line += `"DynamoDbCallLatency":[${calls.map(f64).join(",")}],`;
  line += `"DynamoDbCalls":${record.calls.length},"DynamoDbOperations":${JSON.stringify(spent.attempts)},` +
    `"DynamoDbReadUnits":${f64(spent.readUnits)},"DynamoDbWriteUnits":${f64(spent.writeUnits)},` +
    `"Function":"${record.function}","Latency":${f64(record.latency)},"Outcome":"${record.outcome}",`;
  if (!usageIsEmpty(record.outside)) {
    const o = record.outside;
    line += `"OutsideRequests":{"DynamoDbOperations":${JSON.stringify(o.attempts)},` +
      `"ReadUnits":${f64(o.readUnits)},"WriteUnits":${f64(o.writeUnits)}},`;
  }
  if (record.refusal !== undefined) line += `"Reason":"${record.refusal}",`;
  line += `"Requests":1,"StatusClass":"${statusClass(record.status)}","_aws":{"CloudWatchMetrics":[` +
    REQUESTS_DIRECTIVE + "," + (calls.length > 0 ? CALLS_DIRECTIVE : NO_CALLS_DIRECTIVE) +
    (record.refusal !== undefined ? "," + REFUSALS_DIRECTIVE : "") + (record.coldStart ? "," + COLD_DIRECTIVE : "") +
    `],"Timestamp":${record.timestampMs}}}`;
  return line;
}

/** `serve`: the request's span, the handler, its response, the log line of an error, and
 * the request's metrics line. `context`: the invocation's request id and deadline (epoch ms). */
async function handle(event, context) {
  // lambda_http refuses an event it cannot read as a request (an error to the Runtime API);
  // of the event sources it reads, the peer reads the one the benchmark sends.
  if (typeof event?.requestContext?.http?.method !== "string") {
    throw new Error("failed to deserialize the incoming data into the function's payload type: " +
      "the peer expects an API Gateway HTTP API (payload 2.0) event");
  }
  const requestId = context.requestId || `local-${randomId("")}`;
  const deadline = context.deadlineMs >= EARLIEST_DEADLINE_MS
    ? context.deadlineMs - RESPONSE_MARGIN_MS
    : Date.now() + DEFAULT_BUDGET_MS;
  const request = {
    deadline,
    calls: [],
    usage: newUsage(),
    span: { operation: "create_payment", requestId, accountId: undefined, keyPrefix: undefined },
  };
  const started = performance.now();
  let reply, failure;
  try {
    reply = await createPayment(request, event);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    failure = err;
  }
  // `metrics::measured`: what the client spent outside requests is taken with the handler's
  // own log, as soon as the handler is done.
  const outsideSpent = takeOutside();
  let response, status, outcome, refusal;
  if (reply !== undefined) {
    ({ status, outcome } = reply);
    response = apiResponse(status, reply.body, requestId, reply.headers);
  } else {
    const err = failure;
    status = err.status;
    outcome = err.code;
    refusal = err.refusal;
    if (status >= 500) {
      error("request failed", { status, code: err.code, error: chain(err) }, request.span);
    } else {
      info("request refused", { status, code: err.code, reason: err.display }, request.span);
    }
    response = errorResponse(err, requestId);
  }
  const latency = performance.now() - started;
  const cold = coldStart;
  coldStart = false;
  process.stdout.write(emfLine({
    function: "create_payment", status, outcome, latency, calls: request.calls, refusal,
    usage: request.usage, outside: outsideSpent, coldStart: cold, timestampMs: Date.now(),
  }) + "\n");
  return response;
}

// --------------------------------------------------------------------------------------------
// The Lambda Runtime API loop: next invocation, handler, response (or error), again.

const RUNTIME_PATH = "/2018-06-01/runtime";
let runtimeHost;
let runtimePort;
const runtimeAgent = new http.Agent({ keepAlive: true, maxSockets: 1, noDelay: true });

function runtimeCall(method, path, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: runtimeHost, port: runtimePort, method, path: RUNTIME_PATH + path, agent: runtimeAgent, headers },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => resolve({
          status: res.statusCode,
          headers: res.headers,
          body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
        }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const post = (path, text, headers = {}) =>
  runtimeCall("POST", path, text, {
    "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers,
  });

function errorPayload(err) {
  const errorType = err?.name ?? "Error";
  return {
    errorType,
    text: JSON.stringify({
      errorType,
      errorMessage: err?.message ?? String(err),
      trace: typeof err?.stack === "string" ? err.stack.split("\n") : [],
    }),
  };
}

async function runtimeLoop() {
  for (;;) {
    const next = await runtimeCall("GET", "/invocation/next");
    if (next.status !== 200) throw new Error(`GET /invocation/next answered ${next.status}`);
    const requestId = next.headers["lambda-runtime-aws-request-id"];
    const traceId = next.headers["lambda-runtime-trace-id"];
    // As the managed runtime does: the SDK's recursion detection reads it.
    if (traceId) process.env._X_AMZN_TRACE_ID = traceId;
    else delete process.env._X_AMZN_TRACE_ID;
    const context = {
      requestId,
      deadlineMs: Number(next.headers["lambda-runtime-deadline-ms"]),
    };
    let result;
    try {
      result = JSON.stringify(await handle(JSON.parse(next.body.toString("utf8")), context));
    } catch (err) {
      const { errorType, text } = errorPayload(err);
      console.error(`invocation ${requestId} failed: ${err?.stack ?? err}`);
      await post(`/invocation/${requestId}/error`, text, { "lambda-runtime-function-error-type": errorType });
      continue;
    }
    await post(`/invocation/${requestId}/response`, result);
  }
}

function init() {
  if (typeof zlib.crc32 !== "function") {
    throw new Error(`zlib.crc32 is missing: the peer needs Node.js 20.15 or later, this is ${process.version}`);
  }
  config = configFromEnv();
  client = dynamodbClient(config.endpoint);
}

/** As its own process (the benchmark's way, and a custom runtime's): init, then the loop. */
async function main() {
  const api = process.env.AWS_LAMBDA_RUNTIME_API;
  if (!api) {
    console.error("AWS_LAMBDA_RUNTIME_API is not set: run this under a Lambda Runtime API");
    process.exit(1);
  }
  const colon = api.lastIndexOf(":");
  runtimeHost = colon > 0 ? api.slice(0, colon) : api;
  runtimePort = colon > 0 ? Number(api.slice(colon + 1)) : 80;
  try {
    init();
  } catch (err) {
    console.error(`init failed: ${err.message}`);
    const { errorType, text } = errorPayload(err);
    await post("/init/error", text, { "lambda-runtime-function-error-type": `Runtime.${errorType}` }).catch(() => {});
    process.exit(1);
  }
  await warmUp();
  await runtimeLoop();
}

/** The handler as AWS's managed Node.js runtime calls it (handler setting `index.handler`),
 * for node-peer-handler-only.zip: that runtime runs its own Runtime API loop. */
export async function handler(event, context) {
  return handle(event, {
    requestId: context.awsRequestId,
    deadlineMs: Date.now() + context.getRemainingTimeInMillis(),
  });
}

// The managed runtime (which sets AWS_EXECUTION_ENV=AWS_Lambda_nodejs20.x) imports this module
// during its init phase: the same init then, and no loop of our own.
if (/^AWS_Lambda_nodejs/.test(process.env.AWS_EXECUTION_ENV ?? "")) {
  init();
  await warmUp();
} else {
  main().catch((err) => {
    console.error(`runtime loop failed: ${err?.stack ?? err}`);
    process.exit(1);
  });
}
