//! A DynamoDB Local that a test owns and can stop and restart (with its data on disk), for
//! tests of what happens when the database goes away mid-stream. Started, like everywhere in
//! the repository, by `scripts/dynamodb-local`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

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
        let (log_path, log) = log_file(&format!("dynamodb-local-{}.log", self.port));
        // The script execs java, so the group's leader is the JVM itself.
        let mut command = Command::new(workspace_root().join("scripts/dynamodb-local"));
        command
            .arg(self.port.to_string())
            .arg("-dbPath")
            .arg(&self.data_dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut process = GroupGuard::spawn(command, "scripts/dynamodb-local");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !wait_until_listening(self.port, Duration::from_secs(1)) {
            assert!(
                !process.has_exited() && Instant::now() < deadline,
                "DynamoDB Local did not start on port {}; log {}:\n{}",
                self.port,
                log_path.display(),
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        self.process = Some(process);
    }

    /// Stops the server (SIGTERM, then SIGKILL if needed); its data stays on disk.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers, as a
    /// database stalled by a long pause.
    pub fn pause(&self) {
        if let Some(process) = &self.process {
            process.signal("STOP");
        }
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        if let Some(process) = &self.process {
            process.signal("CONT");
        }
    }

    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }
}
