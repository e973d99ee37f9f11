//! Benchmark tool: a Lambda Runtime API emulator for one function process (one execution
//! environment), driven by the benchmark harness (`tools/bench/harness.py`) over stdin and
//! stdout.
//!
//! The harness measures a warm invocation from the moment its event is handed to the function
//! to the moment the function's response arrives. Both stamps are taken here, by a thread
//! parked on the connection's socket, so a sample carries almost nothing of the emulator's own
//! cost: an event is stamped just before its reply is written, a response when the first bytes
//! of its request arrive. The stamps are CLOCK_MONOTONIC nanoseconds, the clock of Python's
//! `time.perf_counter_ns`, so the harness can relate them to the process start it stamps.
//!
//! Protocol, one JSON object per line:
//!
//! ```text
//! stdout  {"port": N}                                  once listening on 127.0.0.1:N
//! stdin   {"id": "...", "event": "<event JSON text>"}   queue an invocation
//! stdout  {"first_next_ns": N}                          first GET .../invocation/next
//! stdout  {"id": "...", "kind": "response"|"error", "handed_ns": N, "done_ns": N,
//!          "body": "..."}                               an invocation finished
//! stdout  {"init_error": "..."}                         POST .../init/error
//! ```
//!
//! End of stdin stops the emulator.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";
/// Followed by `{request id}/response` or `{request id}/error`.
const INVOCATION_PREFIX: &str = "/2018-06-01/runtime/invocation/";
const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// What the emulator tells the function about its deadline (the template's timeout is 10 s;
/// the harness gives up on a response well before this).
const DEADLINE: Duration = Duration::from_secs(30);

/// CLOCK_MONOTONIC in nanoseconds, the clock the harness stamps process starts with.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_MONOTONIC is always available on
    // Linux, so clock_gettime only writes into `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

struct Pending {
    id: String,
    event: Vec<u8>,
}

#[derive(Default)]
struct State {
    pending: VecDeque<Pending>,
    /// Invocations handed out and not yet answered: id -> hand-out stamp.
    handed: HashMap<String, u64>,
    first_next_seen: bool,
    closed: bool,
}

struct Emulator {
    function_name: String,
    /// The trace header's `Sampled` flag: `1` as Lambda sends it for a request that active
    /// tracing samples, `0` otherwise (`BENCH_TRACE_SAMPLED=1` to measure the difference).
    trace_sampled: u8,
    state: Mutex<State>,
    ready: Condvar,
    out: Mutex<io::Stdout>,
}

impl Emulator {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One line to the harness. A harness that has gone away ends the emulator.
    fn report(&self, message: Value) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if writeln!(out, "{message}")
            .and_then(|()| out.flush())
            .is_err()
        {
            std::process::exit(0);
        }
    }

    fn close(&self) {
        self.state().closed = true;
        self.ready.notify_all();
    }
}

/// A request as the emulator needs it.
#[derive(Debug, PartialEq)]
struct Request {
    method: String,
    path: String,
    close: bool,
    body: Vec<u8>,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Reads one line (ending in `\n`) into `line`, refusing lines that would take the head past
/// `budget` bytes.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>, budget: &mut usize) -> io::Result<()> {
    line.clear();
    let n = reader
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', line)?;
    if n > *budget {
        return Err(invalid("request head too large"));
    }
    if n == 0 || !line.ends_with(b"\n") {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    *budget -= n;
    Ok(())
}

fn trim_line(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n")
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .unwrap_or(line)
}

/// Reads one HTTP/1.1 request; `Ok(None)` when the client closed the connection between
/// requests.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    if reader.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let mut budget = MAX_HEAD_BYTES;
    let mut line = Vec::new();
    read_line(reader, &mut line, &mut budget)?;
    let request_line =
        String::from_utf8(trim_line(&line).to_vec()).map_err(|_| invalid("request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(_version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {request_line:?}")));
    };
    let (method, path) = (method.to_owned(), path.to_owned());

    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut close = false;
    loop {
        read_line(reader, &mut line, &mut budget)?;
        let header = trim_line(&line);
        if header.is_empty() {
            break;
        }
        let header = std::str::from_utf8(header).map_err(|_| invalid("header"))?;
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header {header:?}")))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let length = value
                    .parse()
                    .map_err(|_| invalid(format!("bad content-length {value:?}")))?;
                content_length = Some(length);
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }

    let body = if chunked {
        read_chunked(reader)?
    } else {
        let length = content_length.unwrap_or(0);
        if length > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(Request {
        method,
        path,
        close,
        body,
    }))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = Vec::new();
    let mut budget = MAX_HEAD_BYTES;
    loop {
        read_line(reader, &mut line, &mut budget)?;
        let size_text = std::str::from_utf8(trim_line(&line)).map_err(|_| invalid("chunk"))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        if size == 0 {
            // Trailers, then the blank line that ends the message.
            loop {
                read_line(reader, &mut line, &mut budget)?;
                if trim_line(&line).is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        read_line(reader, &mut line, &mut budget)?;
        if !trim_line(&line).is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

/// The whole reply in one buffer, so it leaves in one write.
fn format_reply(status: u16, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let mut reply = format!("HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n");
    for (name, value) in headers {
        reply.push_str(&format!("{name}: {value}\r\n"));
    }
    reply.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = reply.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Waits for the next invocation and hands it out; `false` once the emulator is closing.
fn hand_out(emulator: &Emulator, stream: &mut TcpStream) -> io::Result<bool> {
    let invocation = {
        let mut state = emulator.state();
        loop {
            if state.closed {
                return Ok(false);
            }
            if let Some(invocation) = state.pending.pop_front() {
                break invocation;
            }
            state = emulator
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    };
    let deadline_ms = (SystemTime::now() + DEADLINE)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let reply = format_reply(
        200,
        &[
            ("lambda-runtime-aws-request-id", invocation.id.clone()),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                format!(
                    "arn:aws:lambda:us-east-1:123456789012:function:{}",
                    emulator.function_name
                ),
            ),
            (
                "lambda-runtime-trace-id",
                format!(
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled={}",
                    emulator.trace_sampled
                ),
            ),
        ],
        &invocation.event,
    );
    let handed_ns = monotonic_ns();
    emulator.state().handed.insert(invocation.id, handed_ns);
    stream.write_all(&reply)?;
    Ok(true)
}

fn serve(emulator: &Emulator, stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    loop {
        // Parked in `fill_buf` until the function writes: the stamp is taken as soon as the
        // first bytes of a request are here, before any parsing.
        if reader.fill_buf()?.is_empty() {
            return Ok(());
        }
        let arrived_ns = monotonic_ns();
        let Some(request) = read_request(&mut reader)? else {
            return Ok(());
        };
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", NEXT_PATH) => {
                let first = {
                    let mut state = emulator.state();
                    !std::mem::replace(&mut state.first_next_seen, true)
                };
                if first {
                    emulator.report(json!({ "first_next_ns": arrived_ns }));
                }
                if !hand_out(emulator, &mut writer)? {
                    return Ok(());
                }
            }
            ("POST", INIT_ERROR_PATH) => {
                writer.write_all(&format_reply(202, &[], br#"{"status":"OK"}"#))?;
                let body = if request.body.is_empty() {
                    "(empty)".into()
                } else {
                    String::from_utf8_lossy(&request.body)
                };
                emulator.report(json!({ "init_error": body }));
            }
            ("POST", path) if path.starts_with(INVOCATION_PREFIX) => {
                let parsed = path[INVOCATION_PREFIX.len()..]
                    .rsplit_once('/')
                    .filter(|(_, kind)| *kind == "response" || *kind == "error");
                let handed = parsed.and_then(|(id, _)| emulator.state().handed.remove(id));
                match (parsed, handed) {
                    (Some((id, kind)), Some(handed_ns)) => {
                        writer.write_all(&format_reply(202, &[], br#"{"status":"OK"}"#))?;
                        emulator.report(json!({
                            "id": id,
                            "kind": kind,
                            "handed_ns": handed_ns,
                            "done_ns": arrived_ns,
                            "body": String::from_utf8_lossy(&request.body),
                        }));
                    }
                    _ => writer.write_all(&format_reply(
                        400,
                        &[],
                        br#"{"errorMessage":"unknown or finished request id"}"#,
                    ))?,
                }
            }
            _ => writer.write_all(&format_reply(404, &[], br#"{"errorMessage":"not found"}"#))?,
        }
        if request.close {
            return Ok(());
        }
    }
}

/// Queues the harness's invocations until stdin ends.
fn read_commands(emulator: &Emulator) -> Result<(), String> {
    for line in io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        let command: Value =
            serde_json::from_str(&line).map_err(|e| format!("bad command {line:?}: {e}"))?;
        let (Some(id), Some(event)) = (command["id"].as_str(), command["event"].as_str()) else {
            return Err(format!("command needs string id and event: {line:?}"));
        };
        emulator.state().pending.push_back(Pending {
            id: id.to_owned(),
            event: event.as_bytes().to_vec(),
        });
        emulator.ready.notify_all();
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let function_name = match (args.next().as_deref(), args.next(), args.next()) {
        (Some("--function-name"), Some(name), None) => name,
        _ => {
            eprintln!("usage: bench-runtime-api --function-name NAME");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("bench-runtime-api: bind 127.0.0.1: {err}");
            return ExitCode::FAILURE;
        }
    };
    let port = match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(err) => {
            eprintln!("bench-runtime-api: {err}");
            return ExitCode::FAILURE;
        }
    };
    let emulator = Arc::new(Emulator {
        function_name,
        trace_sampled: u8::from(std::env::var("BENCH_TRACE_SAMPLED").as_deref() == Ok("1")),
        state: Mutex::new(State::default()),
        ready: Condvar::new(),
        out: Mutex::new(io::stdout()),
    });
    emulator.report(json!({ "port": port }));

    let accepting = Arc::clone(&emulator);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let emulator = Arc::clone(&accepting);
            thread::spawn(move || {
                // A function process killed mid-request resets its connection: expected.
                if let Err(err) = serve(&emulator, stream) {
                    if !matches!(
                        err.kind(),
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::UnexpectedEof
                    ) {
                        eprintln!("bench-runtime-api: connection: {err}");
                    }
                }
            });
        }
    });

    let result = read_commands(&emulator);
    emulator.close();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-runtime-api: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> io::Result<Option<Request>> {
        read_request(&mut BufReader::new(raw))
    }

    #[test]
    fn reads_a_request_with_a_content_length_body() {
        let raw = b"POST /2018-06-01/runtime/invocation/abc/response HTTP/1.1\r\n\
                    Host: x\r\nContent-Length: 5\r\n\r\nhello";
        let request = parse(raw).unwrap().unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/2018-06-01/runtime/invocation/abc/response");
        assert_eq!(request.body, b"hello");
        assert!(!request.close);
    }

    #[test]
    fn reads_a_chunked_body_and_connection_close() {
        let raw = b"POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
                    3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n";
        let request = parse(raw).unwrap().unwrap();
        assert_eq!(request.body, b"abcde");
        assert!(request.close);
    }

    #[test]
    fn reads_consecutive_requests_on_one_connection() {
        let raw = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        let mut reader = BufReader::new(&raw[..]);
        assert_eq!(read_request(&mut reader).unwrap().unwrap().path, "/a");
        assert_eq!(read_request(&mut reader).unwrap().unwrap().path, "/b");
        assert!(read_request(&mut reader).unwrap().is_none());
    }

    #[test]
    fn refuses_truncated_and_malformed_requests() {
        assert!(parse(b"GET /a HTTP/1.1\r\nHost: x").is_err());
        assert!(parse(b"POST /a HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse(b"POST /a HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse(b"GET /a\r\n\r\n").is_err());
        assert!(parse(b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").is_err());
        let huge = format!(
            "GET /a HTTP/1.1\r\nx: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert!(parse(huge.as_bytes()).is_err());
    }

    #[test]
    fn formats_a_reply_with_its_length() {
        let reply = format_reply(202, &[("a", "b".to_owned())], b"{}");
        assert_eq!(
            reply,
            b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\na: b\r\n\
              content-length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_ns();
        thread::sleep(Duration::from_millis(2));
        assert!(monotonic_ns() >= a + 2_000_000);
    }
}
