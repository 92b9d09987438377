#!/usr/bin/python3
"""A domain's whole cycle with plain python3-libvirt, as against any libvirt daemon.

    libvirt-python-cycle.py URI DOMAIN.xml NIC.xml [--confirm] [--timeout SECONDS]

URI is the daemon's, for virtnetd `qemu+unix:///system?socket=/run/virtnet/libvirt-sock`;
DOMAIN.xml a domain that is not defined yet; NIC.xml one <interface> with a <mac> (a bridge
NIC, say) that the domain does not have. The script defines and starts the domain, plugs the
NIC into the running guest, sets its link down, unplugs it, shuts the guest down (ACPI power
button), starts it again, destroys and undefines it, checking the result of each call. It
prints `ok STEP DETAILS` per step and exits 1 at the first failure, saying why.

With --confirm it reads one line on stdin once the domain runs and one once the NIC is
plugged: whoever runs it (watching the guest's console, say) says when the guest has booted
(a guest that has not yet started its ACPI handling cannot release a NIC or power off) and
when it sees the NIC. Python 3 and python3-libvirt only; nothing of virtnet's.
"""

import argparse
import sys
import time
import xml.etree.ElementTree as ET

import libvirt

LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


def fail(step, why):
    print(f"FAIL {step}: {why}", file=sys.stderr, flush=True)
    sys.exit(1)


def ok(step, detail=""):
    print(f"ok {step} {detail}".rstrip(), flush=True)


def call(step, f, *args):
    """f(*args), or the failure of `step` with libvirt's error."""
    try:
        return f(*args)
    except libvirt.libvirtError as e:
        fail(step, f"{e.get_error_code()}: {e}")


def nic_of(dom, mac, flags=0):
    """The <interface> with `mac` in the domain's XML (live, or with flags the inactive)."""
    root = ET.fromstring(dom.XMLDesc(flags))
    for iface in root.findall("./devices/interface"):
        m = iface.find("mac")
        if m is not None and m.get("address", "").lower() == mac:
            return iface
    return None


def wait(step, what, pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            fail(step, f"no {what} within {timeout} s")
        time.sleep(0.2)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("uri")
    p.add_argument("domain_xml")
    p.add_argument("nic_xml")
    p.add_argument("--confirm", action="store_true")
    p.add_argument("--timeout", type=float, default=120.0)
    a = p.parse_args()
    with open(a.domain_xml) as f:
        domain_xml = f.read()
    with open(a.nic_xml) as f:
        nic_xml = f.read()
    mac = ET.fromstring(nic_xml).find("mac").get("address").lower()

    conn = call("open", libvirt.open, a.uri)
    ok("open", f"{conn.getType()} {conn.getURI()}")

    dom = call("define", conn.defineXML, domain_xml)
    if dom.isPersistent() != 1 or dom.isActive() != 0:
        fail("define", "not a persistent, inactive domain")
    ok("define", f"{dom.name()} {dom.UUIDString()}")

    call("create", dom.create)
    if dom.isActive() != 1 or dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
        fail("create", f"state {dom.state()}")
    ok("create", f"id {dom.ID()}")
    if a.confirm:
        sys.stdin.readline()

    call("attach", dom.attachDeviceFlags, nic_xml, LIVE)
    live = nic_of(dom, mac)
    if live is None:
        fail("attach", f"{mac} not in the live XML")
    if nic_of(dom, mac, libvirt.VIR_DOMAIN_XML_INACTIVE) is not None:
        fail("attach", f"{mac} in the persistent definition after a live attach")
    alias = live.find("alias")
    ok("attach", f"{mac} alias {alias.get('name') if alias is not None else '-'}")
    if a.confirm:
        sys.stdin.readline()

    down = ET.fromstring(nic_xml)
    for old in down.findall("link"):
        down.remove(old)
    ET.SubElement(down, "link", state="down")
    call("update", dom.updateDeviceFlags, ET.tostring(down, encoding="unicode"), LIVE)
    link = nic_of(dom, mac).find("link")
    if link is None or link.get("state") != "down":
        fail("update", f"the live XML's link is {ET.tostring(nic_of(dom, mac))!r}")
    ok("update", "link down")

    # libvirt's detach returns once the guest was asked; the NIC goes when it lets go.
    call("detach", dom.detachDeviceFlags, nic_xml, LIVE)
    wait("detach", f"removal of {mac}", lambda: nic_of(dom, mac) is None, a.timeout)
    ok("detach", mac)

    # Shutdown returns once the guest was asked too; it is shut off when the guest is.
    t = time.monotonic()
    call("shutdown", dom.shutdown)
    wait(
        "shutdown",
        "shut off",
        lambda: dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF,
        a.timeout,
    )
    if dom.isActive() != 0:
        fail("shutdown", "still active")
    ok("shutdown", f"shut off after {time.monotonic() - t:.1f} s")

    call("create", dom.create)
    ok("create", f"id {dom.ID()}")
    call("destroy", dom.destroy)
    if dom.state()[0] != libvirt.VIR_DOMAIN_SHUTOFF:
        fail("destroy", f"state {dom.state()}")
    ok("destroy")

    name = dom.name()
    call("undefine", dom.undefine)
    try:
        conn.lookupByName(name)
        fail("undefine", f"{name} still defined")
    except libvirt.libvirtError as e:
        if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            fail("undefine", f"looking {name} up: {e}")
    ok("undefine", name)

    conn.close()
    ok("close")


if __name__ == "__main__":
    main()
