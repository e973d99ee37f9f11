//! The local stack as a developer runs it: `cargo lambda watch` on a loopback port, routing
//! `/accounts` and `/payments` to the two functions, with DynamoDB Local behind them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::unique_table_names;
use shared::config::dynamodb_client;
use shared::store::dynamo::create_tables;

/// A running `cargo lambda watch`, stopped (with everything it started) on drop.
pub struct LocalStack {
    child: Child,
    pub base_url: String,
    pub log_path: PathBuf,
    pub clients_table: String,
    pub payments_table: String,
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

impl LocalStack {
    /// Starts the stack on fresh tables and waits until it accepts connections.
    pub async fn start(dynamodb_endpoint: &str) -> Self {
        let (clients_table, payments_table) = unique_table_names();
        let client = dynamodb_client(Some(dynamodb_endpoint)).await;
        create_tables(&client, &clients_table, &payments_table)
            .await
            .expect("create e2e tables");

        let root = workspace_root();
        let port = free_port();
        let log_dir = root.join("target").join("e2e-logs");
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let log_path = log_dir.join(format!("watch-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let env_vars = format!(
            "CLIENTS_TABLE={clients_table},PAYMENTS_TABLE={payments_table},\
             API_KEY_ENVIRONMENT=test,DYNAMODB_ENDPOINT={dynamodb_endpoint},RUST_LOG=trace"
        );
        let child = Command::new("cargo")
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string(), "--env-vars", &env_vars])
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            // Own process group, so drop can stop cargo-lambda and the functions it spawned.
            .process_group(0)
            .spawn()
            .expect("start `cargo lambda watch` (is cargo-lambda on PATH? run `make test`)");
        let stack = LocalStack {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log_path,
            clients_table,
            payments_table,
        };
        stack.wait_until_listening(SocketAddr::from(([127, 0, 0, 1], port)));
        stack
    }

    fn wait_until_listening(&self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "cargo lambda watch did not listen on {addr} within 120 s; log:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}
