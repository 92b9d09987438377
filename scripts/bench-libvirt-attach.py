#!/usr/bin/python3
"""The measuring half of scripts/bench-libvirt-attach (run that: it starts and stops the daemons).

Given a running libvirtd and a running virtnetd (both reachable over libvirt's remote protocol,
virtnetd also over its HTTP API), it defines and starts the same test guest under each, waits
until both guests print `virtnet-guest: ready`, and then runs ROUNDS rounds. One round does,
for every "way" below, a timed attach of the same bridge NIC (--live) and, after a pause, a
timed detach that returns when the NIC is gone (checked in the domain's live XML before the
next step). The ways run in a different order every round (rotated, and reversed every
other round), so a change of the machine's load hits all of them alike:

  virsh/libvirtd    `virsh -c LV_URI attach-device guest nic.xml --live` (a process, spawn to exit)
  virsh/virtnetd    the same command against virtnetd's libvirt socket (the RPC path)
  virtnet/virtnetd  `virtnet --connect SOCK attach-device guest nic.xml --live` (the HTTP path)
  py/libvirtd       python3-libvirt `dom.attachDeviceFlags(xml, AFFECT_LIVE)` on a connection
                    opened once (no process, no connect: the daemon's own part)
  py/virtnetd       the same call against virtnetd's libvirt socket
  http/virtnetd     one HTTP request `POST /v1/domains/guest/devices` from this process (a new
                    unix-socket connection per request, as the CLI makes)

plus the clients' own cost: `virsh --version` and `virtnet --version` (a process that
starts and exits, no daemon), `virsh -c URI uri` against each daemon (start, connect: auth
list, open, supports-feature calls; close) and `virtnet dominfo guest` (start, one
request). Every timed step starts after a pause
(SETTLE) so the guest has handled the previous hot-plug event. Writes a markdown report.
BENCH_HOLD=SECS keeps both daemons and guests up that long after the warm-up (for measuring
by hand).
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import libvirt

SETTLE = 0.15
WARM_ROUNDS = 2
MAC = "52:54:00:00:be:01"
NIC_XML = (
    f"<interface type='bridge'><mac address='{MAC}'/><source bridge='br0'/>"
    "<model type='virtio'/></interface>"
)


def domain_xml(guest, serial):
    """The test guest as testkit's TestDomain writes it (TCG, ACPI for PCI hot-plug)."""
    g = json.load(open(os.path.join(guest, "guest.json")))
    return f"""<domain type='qemu'>
  <name>guest</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{os.path.join(guest, g['kernel'])}</kernel>
    <initrd>{os.path.join(guest, g['initrd'])}</initrd>
    <cmdline>{g['cmdline']}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='unix'>
      <source mode='bind' path='{serial}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>"""


def connect_console(serial, timeout=30):
    """Connects to a guest's serial socket (QEMU listens; what the guest prints before a client
    connects is lost: connect right after the start)."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(serial)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                sys.exit(f"no serial socket {serial}")
            time.sleep(0.01)


def wait_ready(s, timeout=180):
    """Reads the console until the guest says it is ready; the socket stays open (the guest's
    console output has somewhere to go)."""
    s.settimeout(timeout)
    seen = b""
    while b"virtnet-guest: ready" not in seen:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("a console closed before the guest was ready")
        seen += chunk


def run(argv, expect=None):
    """Runs a client process; its wall time (spawn to exit). Exits on failure."""
    t = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    took = time.perf_counter() - t
    if p.returncode != 0 or (expect and expect not in p.stdout):
        sys.exit(f"{' '.join(argv)} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return took


def http_post(sock, path, body):
    t = time.perf_counter()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    data = body.encode()
    s.sendall(
        f"POST {path} HTTP/1.1\r\nHost: virtnetd\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data
    )
    resp = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        resp += chunk
    s.close()
    took = time.perf_counter() - t
    if not resp.startswith(b"HTTP/1.1 200"):
        sys.exit(f"POST {path}: {resp[:400]!r}")
    return took


def main():
    ap = argparse.ArgumentParser()
    for a in ("--work", "--guest", "--lv-uri", "--vn-uri", "--vn-socket", "--virtnet", "--out"):
        ap.add_argument(a, required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--lv-pid", type=int, required=True)
    ap.add_argument("--vn-pid", type=int, required=True)
    a = ap.parse_args()

    nic = os.path.join(a.work, "nic.xml")
    open(nic, "w").write(NIC_XML + "\n")
    conns = {"libvirtd": libvirt.open(a.lv_uri), "virtnetd": libvirt.open(a.vn_uri)}
    doms, consoles = {}, []
    for d, conn in conns.items():
        serial = os.path.join(a.work, f"{d}-serial.sock")
        dom = conn.defineXML(domain_xml(a.guest, serial))
        dom.create()
        consoles.append(connect_console(serial))
        doms[d] = dom
    for c in consoles:
        wait_ready(c)
    print(f"   both guests ready ({conns['libvirtd'].getLibVersion()} vs virtnetd)", flush=True)

    uri = {"libvirtd": a.lv_uri, "virtnetd": a.vn_uri}
    body = json.dumps({"xml": NIC_XML, "live": True})

    def gone(d):
        """Waits (untimed) until the NIC has left the domain's live XML."""
        deadline = time.monotonic() + 30
        while MAC in doms[d].XMLDesc(0):
            if time.monotonic() > deadline:
                sys.exit(f"{d}: the NIC is still there 30 s after its detach")
            time.sleep(0.02)

    def virsh(d, op):
        ok = "attached successfully" if op == "attach" else "detached successfully"
        return run(["virsh", "-c", uri[d], f"{op}-device", "guest", nic, "--live"], ok)

    def virtnet(op):
        return run([a.virtnet, "--connect", a.vn_socket, f"{op}-device", "guest", nic, "--live"])

    def py(d, op):
        t = time.perf_counter()
        if op == "attach":
            doms[d].attachDeviceFlags(NIC_XML, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        else:
            doms[d].detachDeviceFlags(NIC_XML, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        return time.perf_counter() - t

    def http(op):
        path = "/v1/domains/guest/devices" + ("" if op == "attach" else "/detach")
        return http_post(a.vn_socket, path, body)

    ways = {
        "virsh/libvirtd": ("libvirtd", lambda op: virsh("libvirtd", op)),
        "virsh/virtnetd": ("virtnetd", lambda op: virsh("virtnetd", op)),
        "virtnet/virtnetd": ("virtnetd", virtnet),
        "py/libvirtd": ("libvirtd", lambda op: py("libvirtd", op)),
        "py/virtnetd": ("virtnetd", lambda op: py("virtnetd", op)),
        "http/virtnetd": ("virtnetd", http),
    }
    lookups = {
        "virsh --version": lambda: run(["virsh", "--version"]),
        "virtnet --version": lambda: run([a.virtnet, "--version"]),
        "virsh uri/libvirtd": lambda: run(["virsh", "-c", uri["libvirtd"], "uri"]),
        "virsh uri/virtnetd": lambda: run(["virsh", "-c", uri["virtnetd"], "uri"]),
        "virtnet dominfo/virtnetd": lambda: run([a.virtnet, "--connect", a.vn_socket, "dominfo", "guest"]),
    }
    att = {w: [] for w in ways}
    det = {w: [] for w in ways}
    look = {w: [] for w in lookups}
    loads = [os.getloadavg()]

    pids = {"libvirtd": a.lv_pid, "virtnetd": a.vn_pid}
    for d, pid in pids.items():
        comm = open(f"/proc/{pid}/comm").read().strip()
        if comm != d:
            sys.exit(f"pid {pid} is {comm}, not {d}")
    cpu = {w: [] for w in ways}

    def one(w, keep):
        d, f = ways[w]
        time.sleep(SETTLE)
        before = cpu_ns(pids[d])
        ta = f("attach")
        used = cpu_ns(pids[d]) - before
        time.sleep(SETTLE)
        td = f("detach")
        gone(d)
        if keep:
            cpu[w].append(used / 1e9)
            att[w].append(ta)
            det[w].append(td)

    names = list(ways)
    for _ in range(WARM_ROUNDS):
        for w in names:
            one(w, False)
    if os.environ.get("BENCH_HOLD"):
        # For measuring by hand: both daemons and guests stay up for BENCH_HOLD seconds.
        print(f"   holding {os.environ['BENCH_HOLD']} s: virsh -c '{a.vn_uri}' attach-device guest {nic} --live", flush=True)
        time.sleep(float(os.environ["BENCH_HOLD"]))
    for r in range(a.rounds):
        k = r % len(names)
        order = names[k:] + names[:k]
        if r % 2:
            order.reverse()
        for w in order:
            one(w, True)
        for w in (list(lookups) if r % 2 == 0 else list(reversed(list(lookups)))):
            time.sleep(SETTLE / 3)
            look[w].append(lookups[w]())
        loads.append(os.getloadavg())
        print(f"   round {r + 1}/{a.rounds}: load {loads[-1][0]:.2f}", flush=True)

    for d, dom in doms.items():
        dom.destroy()
        dom.undefine()
    for c in consoles:
        c.close()
    for c in conns.values():
        c.close()
    report(a, att, det, look, loads, cpu)


def cpu_ns(pid):
    """CPU time of all a process's threads so far (/proc/PID/task/*/schedstat), in ns."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{t}/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def ms(x):
    return f"{x * 1000:.1f} ms"


def med(v):
    return statistics.median(v)


def paired(a, b):
    return statistics.median([x / y for x, y in zip(a, b)])


def spread(v):
    return f"{min(v) * 1000:.1f}–{max(v) * 1000:.1f}"


def report(a, att, det, look, loads, cpu):
    def row(what, x, y, target=""):
        return (
            f"| {what} | {ms(med(x))} ({spread(x)}) | {ms(med(y))} ({spread(y)}) | "
            f"{med(x) / med(y):.2f}× | {paired(x, y):.2f}× | {target} |"
        )

    head = (
        "| operation | A: median (min–max, ms) | B: median (min–max, ms) | A/B, ratio of medians | "
        "A/B, median of per-round ratios | target |\n|---|---|---|---|---|---|"
    )
    n = len(att["virsh/libvirtd"])
    t1 = "\n".join(
        [
            head,
            row("`virsh attach-device --live`: A virtnetd, B libvirtd", att["virsh/virtnetd"], att["virsh/libvirtd"], "≤ 0.5×"),
            row("`virsh detach-device --live` (until removed): A virtnetd, B libvirtd", det["virsh/virtnetd"], det["virsh/libvirtd"]),
            row("python3-libvirt `attachDeviceFlags(LIVE)`, open connection: A virtnetd, B libvirtd", att["py/virtnetd"], att["py/libvirtd"]),
            row("python3-libvirt `detachDeviceFlags(LIVE)`: A virtnetd, B libvirtd", det["py/virtnetd"], det["py/libvirtd"]),
            row("`virsh uri` (client process, connect + close): A virtnetd, B libvirtd", look["virsh uri/virtnetd"], look["virsh uri/libvirtd"]),
            row("the daemon's CPU time per `virsh attach-device`: A virtnetd, B libvirtd", cpu["virsh/virtnetd"], cpu["virsh/libvirtd"]),
        ]
    )
    t2 = "\n".join(
        [
            head,
            row("attach --live: A `virsh attach-device` (RPC), B `virtnet attach-device` (HTTP)", att["virsh/virtnetd"], att["virtnet/virtnetd"], "≤ 1.2×"),
            row("detach --live: A `virsh detach-device` (RPC), B `virtnet detach-device` (HTTP)", det["virsh/virtnetd"], det["virtnet/virtnetd"]),
            row("attach, in-process: A python3-libvirt call (RPC), B one HTTP request", att["py/virtnetd"], att["http/virtnetd"]),
            row("virtnetd's CPU time per attach: A `virsh` (RPC, with connect/close calls), B `virtnet` (HTTP)", cpu["virsh/virtnetd"], cpu["virtnet/virtnetd"]),
            row("virtnetd's CPU time per attach, in-process clients: A python3-libvirt (RPC), B HTTP request", cpu["py/virtnetd"], cpu["http/virtnetd"]),
            row("client start only: A `virsh --version`, B `virtnet --version` (no daemon)", look["virsh --version"], look["virtnet --version"]),
            row("connect: A `virsh uri` (RPC: start, connect, close), B `virtnet dominfo` (HTTP: start, one request)", look["virsh uri/virtnetd"], look["virtnet dominfo/virtnetd"]),
        ]
    )
    l1 = [x[0] for x in loads]
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    lv = subprocess.run(["/usr/sbin/libvirtd", "--version"], capture_output=True, text=True).stdout.strip()
    md = f"""# Benchmark: `virsh attach-device --live`, virtnetd vs Debian's libvirtd; RPC vs HTTP

`scripts/bench-libvirt-attach --rounds {a.rounds}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), {lv},
{qemu} under TCG, the test guest under both daemons at once, {os.cpu_count()} cores;
1-minute load average: {l1[0]:.2f} at the start, {l1[-1]:.2f} at the end, {min(l1):.2f}–{max(l1):.2f} over the
rounds (5- and 15-minute at the end: {loads[-1][1]:.2f}, {loads[-1][2]:.2f}). {n} rounds per row.

## virtnetd vs libvirtd 9.0

{t1}

What bounds the first ratio: `virsh --version` alone (start and exit, no connection) took
{ms(med(look["virsh --version"]))} and `virsh uri` against virtnetd (start, connect, close) {ms(med(look["virsh uri/virtnetd"]))}:
{med(look["virsh uri/virtnetd"]) / med(att["virsh/libvirtd"]):.2f}× libvirtd's `virsh attach-device` before any attach work. The daemons' own part
(python3-libvirt, connection already open): virtnetd {ms(med(att["py/virtnetd"]))}, libvirtd {ms(med(att["py/libvirtd"]))}.

## virtnetd: the libvirt RPC path vs the HTTP path

{t2}

The clients differ by {ms(med(look["virsh --version"]) - med(look["virtnet --version"]))} in starting alone (`--version`); virtnetd's two paths for the
same attach, without the client processes (third row): {paired(att["py/virtnetd"], att["http/virtnetd"]):.2f}×.

## Method

- Both daemons run at once, each with the same test guest (TCG, 256 MiB, 1 vCPU, ACPI), in
  one private network namespace; the NIC is `{NIC_XML}` (a tap on bridge br0, made and
  removed by the daemon). libvirtd 9.0 (Debian's package, `scripts/setup --bench`) runs with
  private tmpfs /run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and its
  own libvirtd.conf/qemu.conf (QEMU as root, `security_driver = "none"`, no cgroups, seccomp
  sandbox and QEMU mount namespace as by default); virtnetd (release build) runs with its
  defaults (QEMU confined: own user, seccomp, mount namespace, cgroup), run dir on a tmpfs.
- Every round times each way once, attach then detach, in an order rotated every round and
  reversed every other round; a pause of {int(SETTLE * 1000)} ms precedes every timed step; after each
  detach the NIC's absence from the live XML is checked (untimed) before the next step.
  {WARM_ROUNDS} untimed warm-up rounds first.
- Times are wall clock (`time.perf_counter`) around the client process (spawn to exit) or
  around the in-process call. "per-round ratio": A/B within a round, median over rounds.
  "CPU time": the daemon's threads' run time over the attach (`/proc/PID/task/*/schedstat`),
  which a busy machine disturbs much less than wall time.
"""
    print(md)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, "w").write(md)
    raw = {"attach": att, "detach": det, "lookup": look, "daemon_cpu_attach": cpu, "loadavg": loads}
    open(a.out.replace(".md", ".json"), "w").write(json.dumps(raw, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
