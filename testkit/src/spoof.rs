//! A test guest that forges its addresses, and what the host side saw: the shared proof of
//! the anti-spoofing filters (`<filterref>` on taps, the switch's port filter).
//!
//! Guest side (busybox over [`SerialConsole::run`]): [`forge_mac`] changes the NIC's MAC (every
//! frame after it carries a foreign source MAC), [`ping_from`] pings from an address the
//! guest was not given, [`arp_from`] sends ARP requests naming a foreign sender address (ARP
//! poisoning: a host that answers learns the forged address). Host side, in the test's
//! namespace: [`icmp_echo_requests`] counts the echo requests the host's stack received (a
//! forged ping that got through raises it) and [`neighbour`] tells whether the host learnt an
//! address (a forged ARP or IP packet that got through leaves an entry).

use std::io;
use std::time::Duration;

use crate::SerialConsole;

/// How long one guest command may take (TCG guests are slow on a busy machine).
const CMD: Duration = Duration::from_secs(60);

/// Sets `ifname`'s MAC in the guest to `mac` (live: virtio-net allows it while up).
pub async fn forge_mac(con: &mut SerialConsole, ifname: &str, mac: &str) -> io::Result<()> {
    run_ok(con, &format!("ip link set dev {ifname} address {mac}")).await
}

/// Pings `dst` `count` times (1 s deadline each) from `src`, an address added to `ifname` for
/// the time of the ping (`/32`, no route change) and removed after; returns ping's exit code
/// (0: a reply came back).
pub async fn ping_from(
    con: &mut SerialConsole,
    ifname: &str,
    src: &str,
    dst: &str,
    count: u32,
) -> io::Result<i32> {
    run_ok(con, &format!("ip addr add {src}/32 dev {ifname}")).await?;
    let rc = run(con, &format!("ping -c {count} -W 1 -I {src} {dst}")).await;
    let del = run_ok(con, &format!("ip addr del {src}/32 dev {ifname}")).await;
    let rc = rc?;
    del?;
    Ok(rc)
}

/// Sends `count` ARP requests for `target` out of `ifname` naming `sender` as the sender
/// address (busybox `arping -s`, which binds to it: the guest allows non-local binds for it);
/// returns arping's exit code (0: a reply came back).
pub async fn arp_from(
    con: &mut SerialConsole,
    ifname: &str,
    sender: &str,
    target: &str,
    count: u32,
) -> io::Result<i32> {
    run_ok(con, "echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind").await?;
    run(
        con,
        &format!(
            "arping -c {count} -w {} -I {ifname} -s {sender} {target}",
            count + 1
        ),
    )
    .await
}

/// ICMP echo requests the calling thread's network namespace received so far (`Icmp:
/// InEchos` of `/proc/thread-self/net/snmp`: `/proc/net` would show the namespace of the
/// process's main thread, not the test thread's).
pub fn icmp_echo_requests() -> u64 {
    let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp")
        .expect("read /proc/thread-self/net/snmp");
    let mut icmp = snmp.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (icmp.next().unwrap_or(""), icmp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "InEchos")
        .and_then(|(_, v)| v.parse().ok())
        .expect("Icmp InEchos in /proc/net/snmp")
}

/// The host's neighbour entry for `ip` (`ip neigh show IP`: `IP dev br0 lladdr MAC STATE`),
/// `None` when it has none.
pub fn neighbour(ip: &str) -> Option<String> {
    let out = crate::ip(&format!("neigh show {ip}"));
    let line = out.lines().find(|l| l.starts_with(&format!("{ip} ")))?;
    Some(line.trim().to_string())
}

async fn run(con: &mut SerialConsole, cmd: &str) -> io::Result<i32> {
    con.run(cmd, CMD).await.map(|(_, rc)| rc)
}

async fn run_ok(con: &mut SerialConsole, cmd: &str) -> io::Result<()> {
    let (out, rc) = con.run(cmd, CMD).await?;
    if rc != 0 {
        return Err(io::Error::other(format!("guest `{cmd}`: rc={rc}\n{out}")));
    }
    Ok(())
}
