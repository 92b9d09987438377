//! Measurement (not a test): `QemuSpawn::spawn` (spawn → QMP greeting → capabilities) of an
//! idle TCG QEMU whose monitor socket virtnet made listen beforehand. Medians.
//!
//! `cargo run -p virtnet-qemu --example spawn_time [RUNS]`.

use std::time::{Duration, Instant};

use virtnet_qemu::{listen_unix, QemuSpawn, StopOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let mut v = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let t0 = Instant::now();
        let mon = listen_unix(&sock).unwrap();
        let args = [
            "-S",
            "-nodefaults",
            "-display",
            "none",
            "-machine",
            "pc",
            "-accel",
            "tcg",
            "-m",
            "256",
            "-chardev",
            "socket,id=charmonitor,fd=3,server=on,wait=off",
            "-mon",
            "chardev=charmonitor,id=monitor,mode=control",
        ];
        let q = QemuSpawn::new("qemu-system-x86_64", args, &sock, dir.path().join("log"))
            .inherit_fd(mon, 3)
            .spawn()
            .await
            .unwrap();
        v.push(t0.elapsed());
        q.stop(StopOptions::destroy()).await;
    }
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "QemuSpawn::spawn, {runs} runs: median {:.1} ms, min {:.1} ms",
        ms(v[v.len() / 2]),
        ms(v[0])
    );
}
