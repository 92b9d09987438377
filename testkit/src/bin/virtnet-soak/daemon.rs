//! The virtnetd process under test: started, SIGKILLed, restarted like an operator would.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::api::Api;

/// virtnetd with its state and run dirs under one base directory.
pub struct Daemon {
    /// The binary.
    pub bin: PathBuf,
    /// The QEMU binary it is told to use.
    pub qemu: PathBuf,
    /// `BASE/state`.
    pub state: PathBuf,
    /// `BASE/run`.
    pub run: PathBuf,
    /// `BASE/daemon.log` (appended across restarts).
    pub log: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// A daemon (not started yet) under `base`.
    pub fn new(bin: &Path, qemu: &Path, base: &Path) -> Daemon {
        Daemon {
            bin: bin.to_path_buf(),
            qemu: qemu.to_path_buf(),
            state: base.join("state"),
            run: base.join("run"),
            log: base.join("daemon.log"),
            child: None,
        }
    }

    /// The API socket.
    pub fn api(&self) -> Api {
        Api {
            socket: self.run.join("virtnetd.sock"),
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs.
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Starts virtnetd and waits until its API answers (a restart after a crash adopts the
    /// running QEMUs and switches before it listens).
    pub fn start(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("virtnetd runs already".into());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open {}: {e}", self.log.display()))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--state-dir")
            .arg(&self.state)
            .arg("--run-dir")
            .arg(&self.run)
            .arg("--qemu")
            .arg(&self.qemu)
            .env("VIRTNETD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Not in the terminal's process group: Ctrl-C stops the soak, which then destroys
            // everything through the daemon.
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| format!("spawn virtnetd: {e}"))?;
        let api = self.api();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if api.get("/v1/version").is_ok_and(|a| a.status == 200) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("virtnetd exited at start: {status}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("virtnetd did not answer within 60 s of its start".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL (a crash) and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (a graceful stop: VMs and switches keep running) and reap; `Err` when it did
    /// not exit within 30 s (then it is SIGKILLed).
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on the pid of our own child, not yet reaped.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(c.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return Err("virtnetd did not exit within 30 s of SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
