//! The QMP client against a scripted fake QEMU: orderings and failures a real QEMU does not
//! produce on demand (event before reply, out-of-order replies, silence, sudden close).

use std::future::Future;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixListener;
use virtnet_qemu::{QemuError, QemuVersion, QmpClient, QmpOptions};

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 3, "minor": 1, "major": 9}, "package": "fake"}, "capabilities": ["oob"]}}"#;

/// The fake QEMU's side of one connection.
struct Fake {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

impl Fake {
    async fn send(&mut self, v: Value) {
        let mut b = serde_json::to_vec(&v).unwrap();
        b.extend_from_slice(b"\r\n");
        self.wr.write_all(&b).await.unwrap();
    }

    /// Next command, or `None` at end of file.
    async fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.rd.read_line(&mut line).await.unwrap() {
            0 => None,
            _ => Some(serde_json::from_str(&line).unwrap()),
        }
    }

    /// Answers `qmp_capabilities` (after the greeting was sent).
    async fn handshake(&mut self) {
        let c = self.recv().await.unwrap();
        assert_eq!(c["execute"], "qmp_capabilities");
        self.send(json!({"return": {}, "id": c["id"]})).await;
    }
}

/// Starts a fake QEMU running `script` on the first connection, and connects a client.
async fn fake<F, Fut>(script: F) -> (QmpClient, tokio::task::JoinHandle<()>, TempDir)
where
    F: FnOnce(Fake) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (rd, wr) = s.into_split();
        let mut f = Fake {
            rd: BufReader::new(rd),
            wr,
        };
        f.wr.write_all(format!("{GREETING}\r\n").as_bytes())
            .await
            .unwrap();
        f.handshake().await;
        script(f).await;
    });
    let opts = QmpOptions {
        command_timeout: Duration::from_secs(5),
        ..QmpOptions::default()
    };
    let client = QmpClient::connect_with(&path, opts).await.unwrap();
    (client, server, dir)
}

#[tokio::test]
async fn greeting_version_is_exposed() {
    let (qmp, server, _dir) = fake(|_f| async {}).await;
    assert_eq!(qmp.greeting().version, QemuVersion::new(9, 1, 3));
    assert_eq!(qmp.greeting().package, "fake");
    server.await.unwrap();
}

/// QEMU may emit DEVICE_DELETED before the `device_del` reply: the waiter, which can only
/// start after the reply, must still see it.
#[tokio::test]
async fn device_deleted_before_reply_is_not_lost() {
    let (qmp, server, _dir) = fake(|mut f| async move {
        let c = f.recv().await.unwrap();
        assert_eq!(c["execute"], "device_del");
        assert_eq!(c["arguments"]["id"], "n1");
        f.send(json!({"event": "DEVICE_DELETED",
                      "data": {"device": "n1", "path": "/machine/peripheral/n1"},
                      "timestamp": {"seconds": 1, "microseconds": 2}}))
            .await;
        f.send(json!({"return": {}, "id": c["id"]})).await;
        // Keep the connection open until the client is done.
        let _ = f.recv().await;
    })
    .await;
    let t0 = Instant::now();
    qmp.device_del_and_wait("n1", Duration::from_secs(3))
        .await
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    drop(qmp);
    server.await.unwrap();
}

/// A waiter registered before the event is woken by it (the usual order).
#[tokio::test]
async fn waiter_is_woken_by_a_later_event() {
    let (qmp, server, _dir) = fake(|mut f| async move {
        let c = f.recv().await.unwrap();
        f.send(json!({"return": {}, "id": c["id"]})).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        f.send(json!({"event": "DEVICE_DELETED", "data": {"path": "/machine/peripheral-anon/device[0]"}}))
            .await;
        let _ = f.recv().await;
    })
    .await;
    let mut events = qmp.subscribe();
    qmp.execute(
        "device_del",
        json!({"id": "/machine/peripheral-anon/device[0]"}),
    )
    .await
    .unwrap();
    qmp.wait_for_device_deleted("/machine/peripheral-anon/device[0]", Duration::from_secs(3))
        .await
        .unwrap();
    let ev = events.recv().await.unwrap();
    assert_eq!(ev.name, "DEVICE_DELETED");
    assert_eq!(ev.timestamp, None);
    drop(qmp);
    server.await.unwrap();
}

#[tokio::test]
async fn replies_are_matched_by_id_not_order() {
    let (qmp, server, _dir) = fake(|mut f| async move {
        let mut cmds = Vec::new();
        for _ in 0..3 {
            cmds.push(f.recv().await.unwrap());
        }
        for c in cmds.iter().rev() {
            f.send(json!({"return": {"echo": c["execute"]}, "id": c["id"]}))
                .await;
        }
        let _ = f.recv().await;
    })
    .await;
    let (a, b, c) = tokio::join!(
        qmp.execute("cmd-a", Value::Null),
        qmp.execute("cmd-b", Value::Null),
        qmp.execute("cmd-c", Value::Null)
    );
    assert_eq!(a.unwrap()["echo"], "cmd-a");
    assert_eq!(b.unwrap()["echo"], "cmd-b");
    assert_eq!(c.unwrap()["echo"], "cmd-c");
    drop(qmp);
    server.await.unwrap();
}

/// A command QEMU never answers times out, naming the command; others still get answers.
#[tokio::test]
async fn stalled_command_times_out_others_proceed() {
    let (qmp, server, _dir) = fake(|mut f| async move {
        while let Some(c) = f.recv().await {
            if c["execute"] != "netdev_add" {
                f.send(json!({"return": {}, "id": c["id"]})).await;
            }
        }
    })
    .await;
    let slow = qmp.execute_with_timeout(
        "netdev_add",
        json!({"type": "vhost-user", "id": "h1", "chardev": "c1"}),
        Duration::from_millis(300),
    );
    let fast = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        qmp.execute("query-status", Value::Null).await
    };
    let (slow, fast) = tokio::join!(slow, fast);
    fast.unwrap();
    let e = slow.unwrap_err();
    assert!(
        matches!(e, QemuError::CommandTimeout { ref command, timeout }
                 if command == "netdev_add" && timeout == Duration::from_millis(300)),
        "{e:?}"
    );
    drop(qmp);
    server.await.unwrap();
}

#[tokio::test]
async fn close_while_pending_gives_closed() {
    let (qmp, server, _dir) = fake(|mut f| async move {
        let _ = f.recv().await;
        // Drop the connection without answering.
    })
    .await;
    let t0 = Instant::now();
    let e = qmp.execute("query-status", Value::Null).await.unwrap_err();
    assert!(e.is_closed(), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    server.await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), qmp.closed())
        .await
        .unwrap();
}

#[tokio::test]
async fn not_a_qmp_greeting_is_a_protocol_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"QEMU 7.2.22 monitor - type 'help' for more information\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let e = QmpClient::connect(&path).await.unwrap_err();
    assert!(matches!(e, QemuError::Protocol(_)), "{e:?}");
    server.await.unwrap();
    let e = QmpClient::connect(dir.path().join("missing.sock"))
        .await
        .unwrap_err();
    assert!(matches!(e, QemuError::QmpConnect { .. }), "{e:?}");
}

/// Reads one message with its fds from a blocking socket (the fake server's side).
fn recv_with_fds(sock: &std::os::unix::net::UnixStream) -> (Vec<u8>, Vec<OwnedFd>) {
    let mut buf = [0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let r = rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = m {
            fds.extend(it);
        }
    }
    (buf[..r.bytes].to_vec(), fds)
}

/// Each fd arrives in the same message as its own command's bytes, also when several
/// callers pass fds at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fd_travels_with_its_command() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("qmp.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let pipes: Vec<_> = (0..4).map(|_| rustix::pipe::pipe().unwrap()).collect();
    let links: Vec<String> = pipes
        .iter()
        .map(|(r, _)| {
            std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(r)
            ))
            .unwrap()
            .to_string_lossy()
            .into_owned()
        })
        .collect();
    let expected = links.clone();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = listener.accept().unwrap();
        writeln!(s, "{GREETING}").unwrap();
        let (b, fds) = recv_with_fds(&s);
        assert!(fds.is_empty());
        let c: Value = serde_json::from_slice(&b).unwrap();
        writeln!(s, "{}", json!({"return": {}, "id": c["id"]})).unwrap();
        for _ in 0..4 {
            // The client writes each command in one piece; the fd comes with it.
            let (b, fds) = recv_with_fds(&s);
            let c: Value = serde_json::from_slice(&b).unwrap();
            assert_eq!(fds.len(), 1, "{c}");
            let name = c["arguments"]["fdname"].as_str().unwrap();
            let i: usize = name.trim_start_matches("fd-").parse().unwrap();
            let got = std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fds[0])
            ))
            .unwrap();
            assert_eq!(got.to_string_lossy(), expected[i], "{name}");
            writeln!(s, "{}", json!({"return": {}, "id": c["id"]})).unwrap();
        }
    });
    let qmp = QmpClient::connect(&path).await.unwrap();
    let mut tasks = Vec::new();
    for (i, (r, _)) in pipes.iter().enumerate() {
        let qmp = qmp.clone();
        let fd = r.as_fd().try_clone_to_owned().unwrap();
        tasks.push(tokio::spawn(async move {
            qmp.getfd(&format!("fd-{i}"), fd.as_fd()).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.join().unwrap();
}
