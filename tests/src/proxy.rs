//! A TCP proxy on loopback between the functions and DynamoDB Local, for fault tests: it can
//! forward, refuse connections (DynamoDB unreachable), or deliver requests but lose every
//! response (the write happens, the caller never hears of it). Changing the fault closes
//! every open connection, so pooled connections cannot bypass it.

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
}

pub struct FaultProxy {
    pub endpoint: String,
    fault: watch::Sender<Fault>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (fault, watcher) = watch::channel(Fault::None);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let mut watcher = watcher.clone();
                let fault = *watcher.borrow_and_update();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = relay(client, &upstream, fault) => {}
                        _ = watcher.changed() => {}
                    }
                });
            }
        });
        FaultProxy {
            endpoint,
            fault,
            task,
        }
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, upstream: &str, fault: Fault) -> std::io::Result<()> {
    match fault {
        Fault::Refuse => client.shutdown().await,
        Fault::Hang => {
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
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            Ok(())
        }
    }
}
