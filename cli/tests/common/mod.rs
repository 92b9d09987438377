//! An in-process virtnetd on a temporary socket and store, shared by the CLI tests.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A virtnetd running on its own thread and runtime; stopped when dropped.
pub struct Daemon {
    /// The API socket.
    pub socket: PathBuf,
    /// State and run dirs live here.
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Starts a daemon under a new temporary directory.
    pub fn start() -> Daemon {
        Self::start_with(|_| {})
    }

    /// Starts a daemon that runs VMs with `qemu` (confined, as by default): its directory is
    /// one the QEMU user may reach, as a user's would be.
    pub fn start_with_qemu(qemu: &std::path::Path) -> Daemon {
        Self::start_with(|c| {
            c.qemu = qemu.to_path_buf();
            if let (Some(sb), Some(base)) = (virtnet_testkit::sandbox(), c.run_dir.parent()) {
                virtnet_testkit::sandbox_run_dir(base, &sb);
            }
        })
    }

    /// Same, with `configure` applied to its configuration first.
    pub fn start_with(configure: impl FnOnce(&mut virtnetd::Config)) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let mut config = virtnetd::Config::under(dir.path());
        configure(&mut config);
        let socket = config.socket.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = virtnetd::Server::bind(config).await.expect("bind virtnetd");
                ready_tx.send(()).unwrap();
                server
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        ready_rx.recv().expect("virtnetd started");
        Daemon {
            socket,
            dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Runs the `virtnet` binary against this daemon (`VIRTNET_CONNECT` removed).
    pub fn virtnet(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_virtnet"))
            .arg("--connect")
            .arg(&self.socket)
            .args(args)
            .env_remove("VIRTNET_CONNECT")
            .output()
            .unwrap();
        out
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
