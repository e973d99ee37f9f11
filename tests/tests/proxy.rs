//! The fault proxy's modes, each against a tiny HTTP/1.1 server on loopback that counts the
//! requests it receives and echoes their bodies (no DynamoDB needed).

use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use payments_tests::proxy::{flaky_action, Action, Fault, FaultCounts, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// An HTTP/1.1 server answering every request `200` with its body, on kept-alive
/// connections; `requests` counts the requests it has read.
struct Upstream {
    endpoint: String,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    while let Ok(Some(body)) = read_message(&mut stream).await {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let mut answer =
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len())
                                .into_bytes();
                        answer.extend_from_slice(&body);
                        if stream.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Upstream {
            endpoint,
            requests,
            task,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 message framed by `content-length` and returns its body; `None` on a
/// clean end of stream before any byte.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ErrorKind::UnexpectedEof.into())
            };
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// What a client saw for one request.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Answered(Vec<u8>),
    /// Clean end of stream, no byte of an answer.
    Closed,
    /// The connection was reset.
    Reset,
    /// Nothing within the wait.
    Silence,
}

async fn exchange(stream: &mut TcpStream, body: &str) -> Seen {
    let request = format!(
        "POST / HTTP/1.1\r\nhost: upstream\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return match e.kind() {
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => Seen::Reset,
            _ => panic!("write: {e}"),
        };
    }
    match tokio::time::timeout(Duration::from_millis(500), read_message(stream)).await {
        Err(_) => Seen::Silence,
        Ok(Ok(Some(body))) => Seen::Answered(body),
        Ok(Ok(None)) => Seen::Closed,
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => Seen::Reset,
        Ok(Err(e)) => panic!("read: {e}"),
    }
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    TcpStream::connect(proxy.endpoint.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Waits until the proxy has closed `stream` (a read sees the end or a reset).
async fn closed_by_proxy(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn none_forwards_every_request_on_a_kept_alive_connection() {
    let upstream = Upstream::start().await;
    let proxy = FaultProxy::start(&upstream.endpoint).await;
    let mut stream = connect(&proxy).await;
    for body in ["one", "two", "three"] {
        assert_eq!(
            exchange(&mut stream, body).await,
            Seen::Answered(body.into())
        );
    }
    assert_eq!(upstream.requests(), 3);
}

#[tokio::test]
async fn refuse_closes_without_forwarding() {
    let upstream = Upstream::start().await;
    let proxy = FaultProxy::start(&upstream.endpoint).await;
    proxy.set(Fault::Refuse);
    let mut stream = connect(&proxy).await;
    let seen = exchange(&mut stream, "x").await;
    assert!(matches!(seen, Seen::Closed | Seen::Reset), "{seen:?}");
    assert_eq!(upstream.requests(), 0);
    assert_eq!(proxy.counts().refused, 1);
}

#[tokio::test]
async fn lose_responses_forwards_and_drops_every_answer() {
    let upstream = Upstream::start().await;
    let proxy = FaultProxy::start(&upstream.endpoint).await;
    proxy.set(Fault::LoseResponses);
    for i in 1..=2 {
        let mut stream = connect(&proxy).await;
        assert_eq!(exchange(&mut stream, "write").await, Seen::Closed);
        assert_eq!(upstream.requests(), i, "the request reached the server");
    }
    assert_eq!(proxy.counts().lost_responses, 2);
}

#[tokio::test]
async fn hang_never_answers_and_forwards_nothing() {
    let upstream = Upstream::start().await;
    let proxy = FaultProxy::start(&upstream.endpoint).await;
    proxy.set(Fault::Hang);
    let mut stream = connect(&proxy).await;
    assert_eq!(exchange(&mut stream, "x").await, Seen::Silence);
    assert_eq!(upstream.requests(), 0);
    // Lifting the fault closes the hung connection.
    proxy.set(Fault::None);
    assert!(closed_by_proxy(&mut stream).await);
    let mut stream = connect(&proxy).await;
    assert_eq!(exchange(&mut stream, "x").await, Seen::Answered("x".into()));
}

#[tokio::test]
async fn lose_next_responses_loses_exactly_n_then_forwards() {
    let upstream = Upstream::start().await;
    let proxy = FaultProxy::start(&upstream.endpoint).await;
    let mut pooled = connect(&proxy).await;
    assert_eq!(
        exchange(&mut pooled, "warm").await,
        Seen::Answered("warm".into())
    );

    proxy.lose_next_responses(2);
    assert!(
        closed_by_proxy(&mut pooled).await,
        "an open connection is closed when the fault is set"
    );
    assert_eq!(upstream.requests(), 1);

    for lost in 1..=2 {
        let mut stream = connect(&proxy).await;
        assert_eq!(exchange(&mut stream, "lost").await, Seen::Closed);
        assert_eq!(
            upstream.requests(),
            1 + lost,
            "the request reached the server"
        );
    }
    let mut stream = connect(&proxy).await;
    for body in ["a", "b", "c"] {
        assert_eq!(
            exchange(&mut stream, body).await,
            Seen::Answered(body.into())
        );
    }
    let mut another = connect(&proxy).await;
    assert_eq!(
        exchange(&mut another, "d").await,
        Seen::Answered("d".into())
    );
    assert_eq!(upstream.requests(), 7);
    let counts = proxy.counts();
    assert_eq!((counts.lost_responses, counts.forwarded), (2, 4));
    assert_eq!(counts.unframed, 0);
}

#[tokio::test]
async fn lose_next_responses_counts_requests_not_connections() {
    let upstream = Upstream::start().await;
    let proxy = FaultProxy::start(&upstream.endpoint).await;
    proxy.lose_next_responses(1);
    // A connection that sends nothing uses up no fault.
    let idle = connect(&proxy).await;
    drop(idle);
    let mut stream = connect(&proxy).await;
    assert_eq!(exchange(&mut stream, "lost").await, Seen::Closed);
    let mut stream = connect(&proxy).await;
    assert_eq!(
        exchange(&mut stream, "ok").await,
        Seen::Answered("ok".into())
    );
    assert_eq!(upstream.requests(), 2);
}

/// Sends `n` requests one after another, reusing the connection while it lasts, and returns
/// what the proxy did with each as the client saw it.
async fn run_sequence(proxy: &FaultProxy, n: u64) -> (Vec<Action>, usize) {
    let mut actions = Vec::new();
    let mut longest_connection = 0;
    let mut on_this_connection = 0;
    let mut stream: Option<TcpStream> = None;
    for i in 0..n {
        if stream.is_none() {
            stream = Some(connect(proxy).await);
            on_this_connection = 0;
        }
        let body = format!("request {i}");
        on_this_connection += 1;
        longest_connection = longest_connection.max(on_this_connection);
        let action = match exchange(stream.as_mut().unwrap(), &body).await {
            Seen::Answered(echo) => {
                assert_eq!(echo, body.as_bytes());
                Action::Forward
            }
            Seen::Closed => Action::LoseResponse,
            Seen::Reset => Action::Reset,
            Seen::Silence => panic!("request {i} unanswered"),
        };
        if action != Action::Forward {
            stream = None;
        }
        actions.push(action);
    }
    (actions, longest_connection)
}

#[tokio::test]
async fn flaky_decides_each_request_from_the_seed() {
    let upstream = Upstream::start().await;
    let proxy = FaultProxy::start(&upstream.endpoint).await;
    let flaky = Fault::Flaky {
        seed: 42,
        lose_response_per_mille: 150,
        reset_per_mille: 150,
    };
    const N: u64 = 300;
    proxy.set(flaky);
    let (seen, longest_connection) = run_sequence(&proxy, N).await;
    let planned: Vec<Action> = (0..N).map(|i| flaky_action(42, 150, 150, i)).collect();
    assert_eq!(seen, planned, "the client saw exactly the seeded faults");

    let of = |kind| seen.iter().filter(|&&a| a == kind).count() as u64;
    let counts = proxy.counts();
    assert_eq!(
        counts,
        FaultCounts {
            forwarded: of(Action::Forward),
            lost_responses: of(Action::LoseResponse),
            resets: of(Action::Reset),
            ..FaultCounts::default()
        }
    );
    assert!(
        of(Action::LoseResponse) > 20 && of(Action::Reset) > 20,
        "{counts:?}"
    );
    assert_eq!(
        upstream.requests() as u64,
        of(Action::Forward) + of(Action::LoseResponse),
        "lost requests reach the server, reset ones do not"
    );
    assert!(
        longest_connection >= 3,
        "faults are per request: a connection carries requests until one is faulted"
    );

    // Setting the same mode again starts the sequence over.
    proxy.set(flaky);
    let (again, _) = run_sequence(&proxy, N).await;
    assert_eq!(again, planned);

    // Back to normal: everything forwarded, nothing faulted.
    proxy.set(Fault::None);
    let (normal, _) = run_sequence(&proxy, 20).await;
    assert!(normal.iter().all(|&a| a == Action::Forward));
}

#[tokio::test]
async fn flaky_with_no_faults_forwards_and_counts() {
    let upstream = Upstream::start().await;
    let proxy = FaultProxy::start(&upstream.endpoint).await;
    proxy.set(Fault::Flaky {
        seed: 1,
        lose_response_per_mille: 0,
        reset_per_mille: 0,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..8 {
        let mut stream = connect(&proxy).await;
        tasks.spawn(async move {
            for i in 0..25 {
                let body = format!("{client}-{i}");
                assert_eq!(
                    exchange(&mut stream, &body).await,
                    Seen::Answered(body.into())
                );
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert_eq!(upstream.requests(), 200);
    assert_eq!(proxy.counts().forwarded, 200);
}

#[tokio::test]
async fn unframed_traffic_is_passed_through() {
    let upstream = Upstream::start().await;
    let proxy = FaultProxy::start(&upstream.endpoint).await;
    proxy.set(Fault::Flaky {
        seed: 1,
        lose_response_per_mille: 1000,
        reset_per_mille: 0,
    });
    let mut stream = connect(&proxy).await;
    stream
        .write_all(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\nhi")
        .await
        .unwrap();
    assert_eq!(
        read_message(&mut stream).await.unwrap(),
        Some(b"hi".to_vec())
    );
    assert_eq!(proxy.counts().unframed, 1);
    assert_eq!(proxy.counts().lost_responses, 0);
}
