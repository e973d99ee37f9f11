//! A TCP proxy on loopback between a client and an HTTP/1.1 server (the functions and
//! DynamoDB Local, or a test client and the local stack), for fault tests: it can forward,
//! refuse connections (the server is unreachable), or deliver requests but lose every
//! response (the write happens, the caller never hears of it). Changing the fault closes
//! every open connection, so pooled connections cannot bypass it.
//!
//! Three modes act on single requests rather than whole connections: [`FaultProxy::
//! lose_next_responses`], [`FaultProxy::lose_responses_of`] and [`Fault::Flaky`]. For those the proxy finds request boundaries
//! in the client's bytes (HTTP/1.1 framed by `Content-Length`, as the AWS SDK and reqwest
//! send them; clients that do not pipeline) and decides each request's fate before it goes
//! upstream. A connection whose framing it does not understand (chunked bodies,
//! `Expect: 100-continue`, no HTTP/1.x) is passed through untouched and counted as
//! `unframed`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass traffic both ways.
    None,
    /// Accept, then close at once without forwarding: DynamoDB is unreachable.
    Refuse,
    /// Forward requests to DynamoDB, discard its responses, hang up: writes happen but the
    /// caller never learns they did.
    LoseResponses,
    /// Accept, read, never answer: DynamoDB hangs.
    Hang,
    /// Per request, chosen from `seed` (see [`flaky_action`]): forward it; forward it, drop
    /// the response and close the connection; or reset the connection (RST, `SO_LINGER` 0)
    /// before forwarding it. Rates are in requests per thousand.
    Flaky {
        seed: u64,
        lose_response_per_mille: u32,
        reset_per_mille: u32,
    },
    /// Per request, chosen from `seed` (see [`chaos_action`]): any of [`Action`]'s fates,
    /// at the rates of `rates`.
    Chaos { seed: u64, rates: ChaosRates },
}

/// Rates of [`Fault::Chaos`], in requests per thousand; what remains is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosRates {
    /// Close the connection without forwarding the request: nothing reaches the server,
    /// and the client cannot tell.
    pub drop_request: u32,
    /// Forward the request, drop the response, close: the server acted, the client never
    /// hears of it.
    pub lose_response: u32,
    /// Reset the connection (RST) before forwarding.
    pub reset: u32,
    /// Hold the request for `delay`, then forward it: past the client's attempt timeout it
    /// lands after the client gave up on it (and perhaps after its retry).
    pub delay: u32,
    pub delay_by: Duration,
}

/// What the proxy does with one request in the per-request modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Forward,
    LoseResponse,
    Reset,
    DropRequest,
    Delay(Duration),
}

/// The fate of the `request`-th request since [`Fault::Chaos`] was set, as
/// [`flaky_action`] decides for [`Fault::Flaky`].
pub fn chaos_action(seed: u64, rates: ChaosRates, request: u64) -> Action {
    let roll = (splitmix64(seed, request) % 1000) as u32;
    let mut bound = 0;
    for (rate, action) in [
        (rates.drop_request, Action::DropRequest),
        (rates.lose_response, Action::LoseResponse),
        (rates.reset, Action::Reset),
        (rates.delay, Action::Delay(rates.delay_by)),
    ] {
        bound += rate;
        if roll < bound {
            return action;
        }
    }
    Action::Forward
}

/// The fate of the `request`-th request (counting from 0, in order of arrival at the proxy,
/// across all connections) since [`Fault::Flaky`] was set: a pure function of its arguments,
/// so a seed always yields the same sequence of faults. Which request gets which fate
/// depends on the order in which concurrent requests arrive.
pub fn flaky_action(
    seed: u64,
    lose_response_per_mille: u32,
    reset_per_mille: u32,
    request: u64,
) -> Action {
    let roll = (splitmix64(seed, request) % 1000) as u32;
    if roll < lose_response_per_mille {
        Action::LoseResponse
    } else if roll < lose_response_per_mille.saturating_add(reset_per_mille) {
        Action::Reset
    } else {
        Action::Forward
    }
}

/// The `index`-th output of the SplitMix64 generator started at `seed`.
pub fn splitmix64(seed: u64, index: u64) -> u64 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What the proxy has done since it started, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests forwarded with their responses (per-request modes only; `Fault::None`
    /// relays bytes and counts nothing).
    pub forwarded: u64,
    /// Requests forwarded whose responses were dropped (`LoseResponses` counts connections
    /// on which the server answered).
    pub lost_responses: u64,
    /// Connections reset before a request was forwarded.
    pub resets: u64,
    /// Connections closed at once (`Refuse`).
    pub refused: u64,
    /// Connections held unanswered (`Hang`).
    pub hung: u64,
    /// Connections passed through because their framing was not understood.
    pub unframed: u64,
    /// Requests never forwarded (their connection closed).
    pub dropped_requests: u64,
    /// Requests held before being forwarded.
    pub delayed: u64,
}

#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    lost_responses: AtomicU64,
    resets: AtomicU64,
    refused: AtomicU64,
    hung: AtomicU64,
    unframed: AtomicU64,
    dropped_requests: AtomicU64,
    delayed: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> FaultCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FaultCounts {
            forwarded: get(&self.forwarded),
            lost_responses: get(&self.lost_responses),
            resets: get(&self.resets),
            refused: get(&self.refused),
            hung: get(&self.hung),
            unframed: get(&self.unframed),
            dropped_requests: get(&self.dropped_requests),
            delayed: get(&self.delayed),
        }
    }
}

/// The current mode, replaced (never changed in place) by `set` and `lose_next_responses`.
enum Mode {
    Fixed(Fault),
    /// Lose the responses of this many more requests, then forward.
    LoseNext(AtomicUsize),
    /// Lose the response of every request for this DynamoDB operation.
    LoseResponsesOf(&'static str),
}

/// Whether `request` (a whole HTTP/1.x request) is a call of the DynamoDB `operation`.
fn calls(request: &[u8], operation: &str) -> bool {
    let end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(request.len());
    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
    let target = format!(
        "\r\nx-amz-target: dynamodb_20120810.{}\r\n",
        operation.to_ascii_lowercase()
    );
    format!("{head}\r\n").contains(&target)
}

struct ModeState {
    mode: Mode,
    /// Requests decided so far in this mode (the index for `flaky_action`).
    decided: AtomicU64,
}

impl ModeState {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(ModeState {
            mode,
            decided: AtomicU64::new(0),
        })
    }

    fn decide(&self, request: &[u8]) -> Action {
        match &self.mode {
            Mode::LoseResponsesOf(operation) if calls(request, operation) => Action::LoseResponse,
            Mode::LoseResponsesOf(_) => Action::Forward,
            Mode::LoseNext(remaining) => {
                match remaining
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                {
                    Ok(_) => Action::LoseResponse,
                    Err(_) => Action::Forward,
                }
            }
            Mode::Fixed(Fault::Flaky {
                seed,
                lose_response_per_mille,
                reset_per_mille,
            }) => {
                let request = self.decided.fetch_add(1, Ordering::SeqCst);
                flaky_action(*seed, *lose_response_per_mille, *reset_per_mille, request)
            }
            Mode::Fixed(Fault::Chaos { seed, rates }) => {
                let request = self.decided.fetch_add(1, Ordering::SeqCst);
                chaos_action(*seed, *rates, request)
            }
            Mode::Fixed(_) => Action::Forward,
        }
    }
}

pub struct FaultProxy {
    pub endpoint: String,
    mode: watch::Sender<Arc<ModeState>>,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`http://host:port`).
    /// Its tasks run on the current Tokio runtime, which must outlive the traffic.
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (mode, watcher) = watch::channel(ModeState::new(Mode::Fixed(Fault::None)));
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn({
            let counters = Arc::clone(&counters);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let upstream = upstream.clone();
                    let counters = Arc::clone(&counters);
                    let mut watcher = watcher.clone();
                    let state = Arc::clone(&watcher.borrow_and_update());
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = relay(client, &upstream, &state, &counters) => {}
                            _ = watcher.changed() => {}
                        }
                    });
                }
            }
        });
        FaultProxy {
            endpoint,
            mode,
            counters,
            task,
        }
    }

    /// Switches to `fault`, closing every open connection.
    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(ModeState::new(Mode::Fixed(fault)));
    }

    /// Closes every open connection; then the next `n` requests reach the server and lose
    /// their responses (each on its own connection, which the proxy closes unanswered), and
    /// later requests are forwarded.
    pub fn lose_next_responses(&self, n: usize) {
        self.mode
            .send_replace(ModeState::new(Mode::LoseNext(AtomicUsize::new(n))));
    }

    /// Closes every open connection; then every request for the DynamoDB `operation`
    /// (`TransactWriteItems`, by its `x-amz-target` header) reaches the server and loses its
    /// response, and every other request is forwarded.
    pub fn lose_responses_of(&self, operation: &'static str) {
        self.mode
            .send_replace(ModeState::new(Mode::LoseResponsesOf(operation)));
    }

    /// What the proxy has done since it started.
    pub fn counts(&self) -> FaultCounts {
        self.counters.snapshot()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: &str,
    state: &ModeState,
    counters: &Counters,
) -> std::io::Result<()> {
    let fault = match &state.mode {
        Mode::Fixed(fault) => *fault,
        Mode::LoseNext(_) | Mode::LoseResponsesOf(_) => {
            return relay_requests(client, upstream, state, counters).await
        }
    };
    match fault {
        Fault::Refuse => {
            Counters::add(&counters.refused);
            client.shutdown().await
        }
        Fault::Hang => {
            Counters::add(&counters.hung);
            // Swallow whatever arrives; the watcher closes the connection when the fault
            // changes or the proxy stops.
            let mut sink = [0u8; 4096];
            while client.read(&mut sink).await? > 0 {}
            std::future::pending::<()>().await;
            Ok(())
        }
        Fault::None => {
            let mut server = TcpStream::connect(upstream).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
            Ok(())
        }
        Fault::LoseResponses => {
            let mut server = TcpStream::connect(upstream).await?;
            let (mut client_read, _client_write) = client.split();
            let (mut server_read, mut server_write) = server.split();
            let mut first_byte = [0u8; 1];
            tokio::select! {
                _ = tokio::io::copy(&mut client_read, &mut server_write) => {}
                _ = server_read.read(&mut first_byte) => {
                    // The server has answered (so the write is done): hang up unanswered.
                    Counters::add(&counters.lost_responses);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            Ok(())
        }
        Fault::Flaky { .. } | Fault::Chaos { .. } => {
            relay_requests(client, upstream, state, counters).await
        }
    }
}

/// How long a lost request may take upstream before the proxy hangs up anyway.
const LOSE_WAIT: Duration = Duration::from_secs(10);

/// Relays one connection request by request, deciding each request's fate as it completes.
async fn relay_requests(
    mut client: TcpStream,
    upstream: &str,
    state: &ModeState,
    counters: &Counters,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    // Relayed chunks go out as they come, not held back for the previous one's ACK.
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let mut pending = Vec::new();
    let mut from_client = [0u8; 16 * 1024];
    let mut from_server = [0u8; 16 * 1024];
    loop {
        // Act on every complete request received so far. The client does not pipeline, so
        // the response to the previous request has been relayed in full by now.
        loop {
            match frame(&pending) {
                Frame::Incomplete => break,
                Frame::Unframed => {
                    Counters::add(&counters.unframed);
                    server.write_all(&pending).await?;
                    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
                    return Ok(());
                }
                Frame::Request(len) => match state.decide(&pending[..len]) {
                    Action::Forward => {
                        server.write_all(&pending[..len]).await?;
                        pending.drain(..len);
                        Counters::add(&counters.forwarded);
                    }
                    Action::LoseResponse => {
                        server.write_all(&pending[..len]).await?;
                        // The server starts answering once it has acted on the request;
                        // then hang up without passing a byte of the answer on.
                        let _ = tokio::time::timeout(LOSE_WAIT, server.read(&mut from_server[..1]))
                            .await;
                        Counters::add(&counters.lost_responses);
                        return Ok(());
                    }
                    Action::Reset => {
                        // Dropping a socket with a zero linger sends RST, not FIN.
                        client.set_zero_linger()?;
                        Counters::add(&counters.resets);
                        return Ok(());
                    }
                    Action::DropRequest => {
                        Counters::add(&counters.dropped_requests);
                        return Ok(());
                    }
                    Action::Delay(by) => {
                        Counters::add(&counters.delayed);
                        tokio::time::sleep(by).await;
                        server.write_all(&pending[..len]).await?;
                        pending.drain(..len);
                        Counters::add(&counters.forwarded);
                    }
                },
            }
        }
        tokio::select! {
            read = client.read(&mut from_client) => {
                let n = read?;
                if n == 0 {
                    return Ok(());
                }
                pending.extend_from_slice(&from_client[..n]);
            }
            read = server.read(&mut from_server) => {
                let n = read?;
                if n == 0 {
                    return Ok(());
                }
                client.write_all(&from_server[..n]).await?;
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// Not a whole request yet.
    Incomplete,
    /// A whole request of this many bytes starts the buffer.
    Request(usize),
    /// Framing the proxy does not follow.
    Unframed,
}

const MAX_HEAD: usize = 64 * 1024;

/// Finds the first HTTP/1.x request in `buf`, framed by its `Content-Length` (none: no body).
fn frame(buf: &[u8]) -> Frame {
    if buf.is_empty() {
        return Frame::Incomplete;
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Frame::Unframed
        } else {
            Frame::Incomplete
        };
    };
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Frame::Unframed;
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    if !(request_line.ends_with(" HTTP/1.1") || request_line.ends_with(" HTTP/1.0")) {
        return Frame::Unframed;
    }
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Frame::Unframed;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match (length, value.trim().parse::<usize>()) {
                (None, Ok(n)) => length = Some(n),
                _ => return Frame::Unframed,
            }
        } else if ["transfer-encoding", "expect", "upgrade"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            return Frame::Unframed;
        }
    }
    let total = end + 4 + length.unwrap_or(0);
    if buf.len() >= total {
        Frame::Request(total)
    } else {
        Frame::Incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_requests_by_content_length() {
        let request = b"POST / HTTP/1.1\r\nhost: x\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(frame(request), Frame::Request(request.len()));
        assert_eq!(frame(&request[..request.len() - 1]), Frame::Incomplete);
        let mut two = request.to_vec();
        two.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(frame(&two), Frame::Request(request.len()));
        assert_eq!(frame(b"GET / HTTP/1.1\r\n\r\n"), Frame::Request(18));
        assert_eq!(frame(b"GET / HTTP/1.1\r\nhost"), Frame::Incomplete);
        for unframed in [
            &b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\nx",
            b"PRI * HTTP/2.0\r\n\r\n",
        ] {
            assert_eq!(frame(unframed), Frame::Unframed);
        }
    }

    #[test]
    fn a_request_is_told_by_its_dynamodb_operation() {
        let transact = b"POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.TransactWriteItems\r\ncontent-length: 2\r\n\r\n{}";
        assert!(calls(transact, "TransactWriteItems"));
        assert!(!calls(transact, "GetItem"));
        let last = b"POST / HTTP/1.1\r\nx-amz-target: DynamoDB_20120810.GetItem\r\n\r\n";
        assert!(calls(last, "GetItem"));
        // In the body, it is not the target.
        let body = b"POST / HTTP/1.1\r\ncontent-length: 52\r\n\r\nx-amz-target: DynamoDB_20120810.TransactWriteItems\r\n";
        assert!(!calls(body, "TransactWriteItems"));
    }

    #[test]
    fn flaky_rates_follow_the_per_mille() {
        let actions: Vec<_> = (0..100_000).map(|i| flaky_action(7, 30, 20, i)).collect();
        let count = |a| actions.iter().filter(|&&b| b == a).count();
        assert!((2_700..3_300).contains(&count(Action::LoseResponse)));
        assert!((1_700..2_300).contains(&count(Action::Reset)));
        assert!((0..1000).all(|i| flaky_action(7, 0, 0, i) == Action::Forward));
        assert!((0..1000).all(|i| flaky_action(7, 1000, 0, i) == Action::LoseResponse));
    }

    #[test]
    fn chaos_rates_follow_the_per_mille_and_the_seed() {
        let rates = ChaosRates {
            drop_request: 10,
            lose_response: 20,
            reset: 30,
            delay: 40,
            delay_by: Duration::from_millis(2500),
        };
        let actions: Vec<_> = (0..100_000).map(|i| chaos_action(9, rates, i)).collect();
        let count = |a| actions.iter().filter(|&&b| b == a).count();
        assert!((800..1_200).contains(&count(Action::DropRequest)));
        assert!((1_700..2_300).contains(&count(Action::LoseResponse)));
        assert!((2_700..3_300).contains(&count(Action::Reset)));
        assert!((3_600..4_400).contains(&count(Action::Delay(rates.delay_by))));
        let again: Vec<_> = (0..100_000).map(|i| chaos_action(9, rates, i)).collect();
        assert_eq!(actions, again, "a seed is one sequence");
    }
}
