//! What `CONNECT_GET_*` and `NODE_GET_INFO` report about the host: its name, QEMU's version,
//! the capabilities XML and the CPU and memory summary, read from the kernel
//! (`/proc/meminfo`, `/proc/cpuinfo`, `/sys/devices/system/node`).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use virtnet_rpc::remote::NodeGetInfoRet;

use super::errors::Refusal;
use virtnet_rpc::ErrorCode;

/// The libvirt release whose protocol files (`remote_protocol.x`, ...) virtnetd follows:
/// Debian 12's libvirt 9.0.0, reported as the daemon's library version.
pub(super) const LIB_VERSION: u64 = 9_000_000;

/// The URI virtnetd answers to.
pub(super) const URI: &str = "qemu:///system";

/// The host's name (`gethostname`).
pub(super) fn hostname() -> Result<String, Refusal> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for `buf.len()` bytes; gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(Refusal::new(
            ErrorCode::OperationFailed,
            format!(
                "cannot get the host name: {}",
                std::io::Error::last_os_error()
            ),
        ));
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// QEMU's version as libvirt encodes it (major * 1,000,000 + minor * 1,000 + micro), from
/// `qemu -version` of the configured binary, asked once.
pub(super) async fn qemu_version(qemu: &Path) -> Result<u64, Refusal> {
    static VERSION: OnceLock<u64> = OnceLock::new();
    if let Some(v) = VERSION.get() {
        return Ok(*v);
    }
    let v = virtnet_qemu::qemu_binary_version(qemu)
        .await
        .map_err(|e| Refusal::new(ErrorCode::OperationFailed, e.to_string()))?;
    let n = u64::from(v.major) * 1_000_000 + u64::from(v.minor) * 1_000 + u64::from(v.micro);
    Ok(*VERSION.get_or_init(|| n))
}

/// The capabilities XML: the host's architecture and one guest, `hvm` on x86_64 with
/// `emulator` and the domain types virtnet runs (`qemu`, and `kvm` when `/dev/kvm` exists).
pub(super) fn capabilities(emulator: &Path) -> String {
    let arch = std::env::consts::ARCH;
    let kvm = if Path::new("/dev/kvm").exists() {
        "      <domain type='kvm'/>\n"
    } else {
        ""
    };
    format!(
        "<capabilities>\n\n  <host>\n    <cpu>\n      <arch>{arch}</arch>\n    </cpu>\n  </host>\n\n  \
         <guest>\n    <os_type>hvm</os_type>\n    <arch name='x86_64'>\n      \
         <wordsize>64</wordsize>\n      <emulator>{}</emulator>\n      \
         <domain type='qemu'/>\n{kvm}    </arch>\n  </guest>\n\n</capabilities>\n",
        xml_escape(&emulator.display().to_string())
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

/// `virNodeInfo`: architecture, memory, CPUs and their topology. When the topology read from
/// `/proc/cpuinfo` does not multiply out to the CPU count, it is reported flat (one node, one
/// socket, a core per CPU), as libvirt does.
pub(super) fn node_info() -> NodeGetInfoRet {
    let mut model = [0u8; 32];
    let arch = std::env::consts::ARCH.as_bytes();
    model[..arch.len().min(31)].copy_from_slice(&arch[..arch.len().min(31)]);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as i32;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let mhz = field("cpu MHz")
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as i32);
    let packages: BTreeSet<&str> = cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim() == "physical id")
        .map(|(_, v)| v.trim())
        .collect();
    let nodes = std::fs::read_dir("/sys/devices/system/node")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.strip_prefix("node")
                        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
                })
                .count() as i32
        })
        .unwrap_or(1)
        .max(1);
    let cores: i32 = field("cpu cores").and_then(|v| v.parse().ok()).unwrap_or(0);
    let siblings: i32 = field("siblings").and_then(|v| v.parse().ok()).unwrap_or(0);
    let sockets_total = packages.len() as i32;
    let threads = if cores > 0 { siblings / cores } else { 0 };
    let (nodes, sockets, cores, threads) = if cores > 0
        && threads > 0
        && sockets_total % nodes == 0
        && sockets_total * cores * threads == cpus
    {
        (nodes, sockets_total / nodes, cores, threads)
    } else {
        (1, 1, cpus, 1)
    };
    NodeGetInfoRet {
        model,
        memory,
        cpus,
        mhz,
        nodes,
        sockets,
        cores,
        threads,
    }
}

/// The CPU time QEMU `pid` used, in nanoseconds (`utime + stime` of `/proc/PID/stat`); 0
/// when it cannot be read.
pub(super) fn cpu_time_ns(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name (which may hold spaces) start at field 3.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks.saturating_mul(1_000_000_000 / hz)
}
