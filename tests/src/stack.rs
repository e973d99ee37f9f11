//! The local stack as a developer runs it (`make dev`): `cargo lambda watch` on a loopback
//! port, routing every route to its function, behind `dev-gateway` (which joins repeated
//! headers as API Gateway does), with DynamoDB Local behind them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::unique_table_names;
use shared::config::dynamodb_client;
use shared::store::dynamo::{create_tables, Tables};

/// A child process in its own process group; dropping it stops the whole group.
pub struct GroupGuard(Child);

impl GroupGuard {
    /// Spawns `command` as the leader of a new process group.
    pub fn spawn(mut command: Command, what: &str) -> Self {
        let child = command
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        GroupGuard(child)
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the whole group.
    pub fn signal(&self, signal: &str) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), "--", &group])
            .status();
    }

    /// Whether the group's leader has exited (it is reaped, the rest of the group is not).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        // A stopped group acts on TERM only once it runs again.
        let _ = Command::new("kill").args(["-CONT", "--", &group]).status();
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

/// A log file for a process the tests start, under `target/e2e-logs`.
pub fn log_file(name: &str) -> (PathBuf, std::fs::File) {
    let dir = workspace_root().join("target").join("e2e-logs");
    std::fs::create_dir_all(&dir).expect("log dir");
    let path = dir.join(name);
    let file = std::fs::File::create(&path).expect("log file");
    (path, file)
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_until_listening(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Fresh tables for one stack.
pub async fn fresh_tables(dynamodb_endpoint: &str) -> Tables {
    let tables = unique_table_names();
    let client = dynamodb_client(Some(dynamodb_endpoint)).await;
    create_tables(&client, &tables)
        .await
        .expect("create tables");
    tables
}

/// The functions' table settings, as `NAME=value` pairs.
pub fn table_env(tables: &Tables) -> [(&'static str, &str); 3] {
    [
        ("CLIENTS_TABLE", tables.clients.as_str()),
        ("PAYMENTS_TABLE", tables.payments.as_str()),
        ("AUDIT_TABLE", tables.audit.as_str()),
    ]
}

/// A running `cargo lambda watch` behind `dev-gateway`, stopped (with everything they
/// started) on drop.
pub struct LocalStack {
    _gateway: GroupGuard,
    _process: GroupGuard,
    pub base_url: String,
    pub log_path: PathBuf,
    pub clients_table: String,
    pub payments_table: String,
    pub tables: Tables,
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
        Self::start_with_concurrency(dynamodb_endpoint, 1).await
    }

    /// As [`LocalStack::start`], with up to `concurrency` instances of each function.
    pub async fn start_with_concurrency(dynamodb_endpoint: &str, concurrency: usize) -> Self {
        let tables = fresh_tables(dynamodb_endpoint).await;
        let port = free_port();
        let watch_port = free_port();
        let (log_path, log) = log_file(&format!("watch-{port}.log"));
        let env_vars = table_env(&tables)
            .iter()
            .map(|(name, value)| format!("{name}={value},"))
            .collect::<String>()
            + &format!(
                "API_KEY_ENVIRONMENT=test,DYNAMODB_ENDPOINT={dynamodb_endpoint},RUST_LOG=trace"
            );
        let mut command = Command::new("cargo");
        command
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args([
                "--invoke-port",
                &watch_port.to_string(),
                "--env-vars",
                &env_vars,
            ])
            .args(["--concurrency", &concurrency.to_string()])
            .current_dir(workspace_root())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let process = GroupGuard::spawn(
            command,
            "`cargo lambda watch` (is cargo-lambda on PATH? run `make test`)",
        );
        let gateway = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
            .join("debug")
            .join("dev-gateway");
        let mut front = Command::new(&gateway);
        front.args([port.to_string(), watch_port.to_string()]);
        let stack = LocalStack {
            _gateway: GroupGuard::spawn(
                front,
                &format!("{} (run `cargo build -p dev-gateway`)", gateway.display()),
            ),
            _process: process,
            base_url: format!("http://127.0.0.1:{port}"),
            log_path,
            clients_table: tables.clients.clone(),
            payments_table: tables.payments.clone(),
            tables,
        };
        assert!(
            wait_until_listening(watch_port, Duration::from_secs(120))
                && wait_until_listening(port, Duration::from_secs(10)),
            "cargo lambda watch (port {watch_port}) and dev-gateway (port {port}) did not both \
             listen within 120 s; log:\n{}",
            stack.log()
        );
        stack
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}
