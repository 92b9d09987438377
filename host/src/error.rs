//! The crate's single error type.

use std::io;
use std::path::PathBuf;

/// Convenience alias used throughout the crate.
pub type Result<T, E = HostError> = std::result::Result<T, E>;

/// Everything that can go wrong while plumbing host networking.
///
/// Each message names the device and says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// An interface name the kernel would reject (checked before any system call).
    #[error(
        "invalid interface name '{name}': {reason} (names are 1-15 bytes, without '/', ':', \
         '%' or whitespace, and not '.' or '..'): fix <target dev='...'/>"
    )]
    InvalidName {
        /// The offending name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// A request that makes no sense (e.g. zero queues).
    #[error("invalid request for '{device}': {reason}")]
    InvalidSpec {
        /// Device the request was about.
        device: String,
        /// What is wrong.
        reason: String,
    },

    /// /dev/net/tun could not be opened.
    #[error(
        "cannot open /dev/net/tun: {source}: load the tun module (`modprobe tun`) and run \
         with CAP_NET_ADMIN (as root)"
    )]
    TunUnavailable {
        /// The underlying error.
        source: io::Error,
    },

    /// A device with the requested name already exists.
    #[error(
        "a network device named '{name}' already exists: choose another <target dev='...'/> \
         or remove it with `ip link del {name}`"
    )]
    NameInUse {
        /// The requested name.
        name: String,
    },

    /// Every automatically generated name was taken.
    #[error("no free interface name of the form '{prefix}N' after {tries} tries: delete unused '{prefix}*' devices")]
    NoFreeName {
        /// The prefix, e.g. `vnet`.
        prefix: String,
        /// How many names were tried.
        tries: u32,
    },

    /// `managed='no'`: the tap must already exist.
    #[error(
        "tap '{name}' does not exist: with managed='no' it must be created beforehand, e.g. \
         `ip tuntap add {name} mode tap vnet_hdr` (add `multi_queue` for queues > 1)"
    )]
    TapNotFound {
        /// The tap name.
        name: String,
    },

    /// The named device exists but is not a tap.
    #[error("'{name}' is a {kind} device, not a tap: name an existing tap in <target dev='...'/>")]
    NotATap {
        /// The device name.
        name: String,
        /// Its kind (e.g. `veth`, `tun (layer 3)`).
        kind: String,
    },

    /// The tap is held by another process.
    #[error(
        "tap '{name}' is busy: another process (another VM?) already has it open; stop that \
         user or use a different tap"
    )]
    TapBusy {
        /// The tap name.
        name: String,
    },

    /// The existing tap's flags don't allow the requested queues/vnet_hdr.
    #[error(
        "tap '{name}' cannot be opened with {wanted}: {source}; recreate it with \
         `ip tuntap add {name} mode tap vnet_hdr multi_queue` or change <driver queues=.../>"
    )]
    TapFlagsMismatch {
        /// The tap name.
        name: String,
        /// What we asked for, e.g. `4 queues`.
        wanted: String,
        /// The kernel's answer.
        source: io::Error,
    },

    /// The bridge named in `<source bridge=.../>` does not exist.
    #[error(
        "bridge '{bridge}' does not exist: create it with `ip link add {bridge} type bridge` \
         or fix <source bridge='{bridge}'/>"
    )]
    BridgeNotFound {
        /// The bridge name.
        bridge: String,
    },

    /// The named device exists but is not a Linux bridge.
    #[error(
        "'{bridge}' is a {kind} device, not a Linux bridge: fix <source bridge='{bridge}'/> \
         (an Open vSwitch bridge needs <virtualport type='openvswitch'/> in the interface)"
    )]
    NotABridge {
        /// The device name.
        bridge: String,
        /// Its actual kind.
        kind: String,
    },

    /// `<virtualport type='openvswitch'>` names a bridge the OVS database does not have.
    #[error(
        "'{bridge}' is not an Open vSwitch bridge (ovs-vsctl br-exists, database {db}): create \
         it with `ovs-vsctl add-br {bridge}`, fix <source bridge='{bridge}'/>, or remove \
         <virtualport type='openvswitch'> to use a Linux bridge"
    )]
    OvsBridgeNotFound {
        /// The bridge name.
        bridge: String,
        /// The OVSDB asked.
        db: String,
    },

    /// An `ovs-vsctl` call failed (or could not run).
    #[error("Open vSwitch: cannot {op}: {detail}")]
    Ovs {
        /// What we tried, e.g. "add port 'vnet0' to Open vSwitch bridge 'br-int'".
        op: String,
        /// ovs-vsctl's message, exit status and database.
        detail: String,
    },

    /// An `ovn-nbctl` call failed (or could not run).
    #[error("OVN Northbound database: cannot {op}: {detail}")]
    Ovn {
        /// What we tried, e.g. "read logical switch port 'p1'".
        op: String,
        /// ovn-nbctl's message, exit status and database.
        detail: String,
    },

    /// The port is already enslaved to another master device.
    #[error("'{port}' is already attached to '{master}': detach it first (`ip link set {port} nomaster`)")]
    AlreadyAttached {
        /// The port.
        port: String,
        /// Its current master.
        master: String,
    },

    /// A device that must exist does not.
    #[error("network device '{name}' does not exist (check `ip link show`)")]
    LinkNotFound {
        /// The device name.
        name: String,
    },

    /// The macvtap lower device (`<source dev=.../>`) does not exist.
    #[error(
        "host device '{name}' does not exist: fix <source dev='{name}'/> in the direct \
         interface (see `ip link show` for candidates)"
    )]
    LowerDeviceNotFound {
        /// The lower device name.
        name: String,
    },

    /// Another macvtap/macvlan on the same lower device already uses this MAC.
    #[error(
        "macvtap '{name}' cannot come up: MAC {mac} is already used by another macvtap on \
         '{lower}': give each interface a unique <mac address=.../>"
    )]
    MacInUse {
        /// The macvtap.
        name: String,
        /// The lower device.
        lower: String,
        /// The duplicate MAC.
        mac: String,
    },

    /// A netlink request failed.
    #[error("netlink: cannot {op}: {source}")]
    Netlink {
        /// What we tried, e.g. "set MAC of 'vnet0'".
        op: String,
        /// The kernel's answer.
        source: io::Error,
    },

    /// A tun/macvtap ioctl or device node operation failed.
    #[error("cannot {op}: {source}")]
    Device {
        /// What we tried.
        op: String,
        /// The underlying error.
        source: io::Error,
    },

    /// A cgroup file or directory could not be made, written or removed.
    #[error("cgroup: cannot {op} {path}: {source}")]
    Cgroup {
        /// `create`, `write '1024' to`, `remove`, ...
        op: String,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// The domain asks for a limit the host's cgroups cannot enforce (controller not
    /// mounted, value out of the controller's range).
    #[error("cgroup: {message}")]
    CgroupUnsupported {
        /// What cannot be enforced, and how to fix it.
        message: String,
    },

    /// Reading or writing sysfs failed.
    #[error("cannot {op} {path}: {source}")]
    Sysfs {
        /// `read`, `write 'x' to`, ...
        op: String,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// No PCI device at that address.
    #[error("no PCI device {addr} ({path} is missing): fix the <address .../> in <source>")]
    PciDeviceNotFound {
        /// PCI address.
        addr: String,
        /// Where we looked.
        path: PathBuf,
    },

    /// The PCI device is not an SR-IOV virtual function.
    #[error(
        "PCI device {addr} is not an SR-IOV virtual function (no physfn link): give a VF \
         address, see `ls -l /sys/bus/pci/devices/*/virtfn*`"
    )]
    NotAVf {
        /// PCI address.
        addr: String,
    },

    /// The PF of a VF has no network device (driver not loaded?).
    #[error(
        "the physical function {pf} of VF {addr} has no network device: load the PF's \
         network driver"
    )]
    PfWithoutNetdev {
        /// VF address.
        addr: String,
        /// PF address.
        pf: String,
    },

    /// The VF is not listed among its PF's virtfnN links.
    #[error("VF {addr} is not listed under its PF {pf} (no virtfnN link points to it)")]
    VfIndexNotFound {
        /// VF address.
        addr: String,
        /// PF address.
        pf: String,
    },

    /// The PF did not report the VF in IFLA_VFINFO_LIST.
    #[error(
        "PF '{pf}' reports no configuration for VF {index}: is SR-IOV enabled (sriov_numvfs)?"
    )]
    VfInfoMissing {
        /// PF netdev.
        pf: String,
        /// VF index.
        index: u32,
    },

    /// The target driver (usually vfio-pci) is not loaded.
    #[error("kernel driver '{driver}' is not loaded ({path} is missing): run `modprobe {driver}`")]
    DriverMissing {
        /// Driver name.
        driver: String,
        /// Where we looked.
        path: PathBuf,
    },

    /// After probing, the device is not bound to the expected driver.
    #[error(
        "PCI device {addr} did not bind to '{driver}' (bound to: {found}): check `dmesg`, and \
         that the IOMMU is enabled (intel_iommu=on / amd_iommu=on)"
    )]
    BindFailed {
        /// PCI address.
        addr: String,
        /// Wanted driver.
        driver: String,
        /// What it is bound to now (`none` if unbound).
        found: String,
    },

    /// `managed='no'`: the VF is not on the driver it must already be bound to.
    #[error(
        "VF {addr} is bound to '{found}', not '{driver}', and the interface has managed='no' \
         (virtnet does not change the driver of an unmanaged VF): bind it to {driver} first, \
         or use managed='yes' to let virtnet bind it (and give it back on release); to bind \
         it yourself: `driverctl set-override {addr} {driver}`"
    )]
    VfNotBound {
        /// VF address.
        addr: String,
        /// The driver it must be on.
        driver: String,
        /// What it is bound to now (`none` if unbound).
        found: String,
    },

    /// An interface's script ran but did not succeed (boxed: it carries the details).
    #[error("{0}")]
    ScriptFailed(Box<crate::script::ScriptFailure>),

    /// An interface's script could not be started.
    #[error(
        "{nic}: cannot run {kind} '{}': {source}: it must be an existing executable file \
         (absolute path, with a #! line if it is a script)",
        script.display()
    )]
    ScriptSpawn {
        /// Up or down.
        kind: crate::script::ScriptKind,
        /// The script.
        script: PathBuf,
        /// The NIC (`net0`).
        nic: String,
        /// Why.
        source: io::Error,
    },

    /// A system user for a confined process could not be looked up or created.
    #[error(
        "system user {name}: {reason} (create it with `useradd --system --user-group {name}`)"
    )]
    SystemUser {
        /// The user (or group) name.
        name: String,
        /// What went wrong.
        reason: String,
    },

    /// A system group (the API's read-only socket's) could not be looked up or created.
    #[error("system group {name}: {reason} (create it with `groupadd --system {name}`)")]
    SystemGroup {
        /// The group name.
        name: String,
        /// What went wrong.
        reason: String,
    },

    /// A path QEMU opens by name is out of its user's reach and virtnet will not fix that
    /// for it: a parent directory it cannot search (virtnet never changes directories), or
    /// a file whose owner bits would not give the access even after a chown.
    #[error("{what} {path}: {reason}")]
    PathUnreachable {
        /// What the path is (`disk 'vda'`, `kernel`, `vhost-user socket of 'net1'`).
        what: String,
        /// The path as the domain names it.
        path: PathBuf,
        /// Why, and how to fix it.
        reason: String,
    },

    /// Reading or changing a path's owner or its `trusted.virtnet.dac.*` record failed.
    #[error("cannot {op} {path}: {source}")]
    Dac {
        /// What we were doing.
        op: String,
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },

    /// `nft` failed (see [`crate::nft`]): what it was asked and what it said.
    #[error("nftables: {op}: {message}")]
    Nft {
        /// The command.
        op: String,
        /// nft's message.
        message: String,
    },

    /// `tc` failed (see [`crate::shaping`]): what it was asked and what it said.
    #[error("tc: {op}: {message}")]
    Tc {
        /// The command.
        op: String,
        /// tc's message.
        message: String,
    },

    /// A `<bandwidth>` direction this host cannot enforce on a device, or values its shaper
    /// refuses (see [`crate::shaping`]): the reason says what to change.
    #[error("cannot enforce <bandwidth><{direction}> on '{dev}': {reason}")]
    ShapingUnsupported {
        /// The device.
        dev: String,
        /// `inbound` or `outbound`.
        direction: &'static str,
        /// What the host lacks.
        reason: String,
    },

    /// A failure injected by [`crate::FakeHost`].
    #[error("injected failure at call #{call} ({what})")]
    Injected {
        /// 0-based call number.
        call: usize,
        /// The call that failed.
        what: String,
    },

    /// An operation failed and undoing its earlier steps failed too.
    #[error("{error}; undoing the earlier steps also failed: {}", undo_errors.join("; "))]
    UndoFailed {
        /// The original failure.
        #[source]
        error: Box<HostError>,
        /// What went wrong while undoing.
        undo_errors: Vec<String>,
    },
}

impl HostError {
    /// Whether the error is the user's to fix: something the domain XML names is wrong,
    /// missing or taken on this host (a bridge that does not exist, a busy or ill-flagged
    /// tap, a name already in use, a PCI address that is no VF, a MAC used twice on one
    /// lower device). False for faults of the host or of virtnet (no /dev/net/tun, netlink
    /// or sysfs I/O failures, a driver that will not bind, a failed undo).
    ///
    /// The variant is chosen where the error is made, from what the request named: e.g.
    /// a bridge named in `<source bridge>` that the kernel does not know is
    /// [`HostError::BridgeNotFound`] (the user's), while a device virtnet created and then
    /// lost is [`HostError::LinkNotFound`] (a fault).
    pub fn is_user_error(&self) -> bool {
        match self {
            HostError::InvalidName { .. }
            | HostError::InvalidSpec { .. }
            | HostError::NameInUse { .. }
            | HostError::TapNotFound { .. }
            | HostError::NotATap { .. }
            | HostError::TapBusy { .. }
            | HostError::TapFlagsMismatch { .. }
            | HostError::BridgeNotFound { .. }
            | HostError::NotABridge { .. }
            | HostError::OvsBridgeNotFound { .. }
            | HostError::AlreadyAttached { .. }
            | HostError::LowerDeviceNotFound { .. }
            | HostError::MacInUse { .. }
            | HostError::PciDeviceNotFound { .. }
            | HostError::NotAVf { .. }
            | HostError::VfNotBound { .. }
            | HostError::PathUnreachable { .. }
            // The user's own script failed, timed out, or is not an executable file.
            | HostError::ScriptFailed(_)
            | HostError::ScriptSpawn { .. }
            | HostError::CgroupUnsupported { .. }
            | HostError::ShapingUnsupported { .. } => true,
            HostError::TunUnavailable { .. }
            | HostError::NoFreeName { .. }
            | HostError::LinkNotFound { .. }
            | HostError::Netlink { .. }
            | HostError::Device { .. }
            | HostError::Sysfs { .. }
            | HostError::Cgroup { .. }
            | HostError::PfWithoutNetdev { .. }
            | HostError::SystemUser { .. }
            | HostError::SystemGroup { .. }
            | HostError::Dac { .. }
            | HostError::Nft { .. }
            | HostError::Ovs { .. }
            | HostError::Ovn { .. }
            | HostError::Tc { .. }
            | HostError::VfIndexNotFound { .. }
            | HostError::VfInfoMissing { .. }
            | HostError::DriverMissing { .. }
            | HostError::BindFailed { .. }
            | HostError::Injected { .. }
            // Something is left behind: whatever the first cause, that is a fault.
            | HostError::UndoFailed { .. } => false,
        }
    }

    /// Wraps a netlink I/O error with what we were doing.
    pub(crate) fn netlink(op: impl Into<String>, source: io::Error) -> Self {
        HostError::Netlink {
            op: op.into(),
            source,
        }
    }

    /// Wraps a device (ioctl/open/mknod) error with what we were doing.
    pub(crate) fn device(op: impl Into<String>, source: io::Error) -> Self {
        HostError::Device {
            op: op.into(),
            source,
        }
    }

    /// Attaches the errors of a failed undo to the original error (if any).
    pub(crate) fn with_undo_errors(self, undo_errors: Vec<HostError>) -> Self {
        if undo_errors.is_empty() {
            self
        } else {
            HostError::UndoFailed {
                error: Box::new(self),
                undo_errors: undo_errors.iter().map(|e| e.to_string()).collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which errors are the user's: what the XML names; the rest are faults.
    #[test]
    fn user_errors_and_faults() {
        let io = || io::Error::from_raw_os_error(libc::ENODEV);
        let user = [
            HostError::BridgeNotFound {
                bridge: "br0".into(),
            },
            HostError::TapBusy { name: "t0".into() },
            HostError::NameInUse { name: "t0".into() },
            HostError::LowerDeviceNotFound {
                name: "eth9".into(),
            },
            HostError::NotAVf {
                addr: "0000:03:00.0".into(),
            },
        ];
        let faults = [
            HostError::TunUnavailable { source: io() },
            HostError::netlink("add link 'vnet0'", io()),
            HostError::LinkNotFound {
                name: "vnet0".into(),
            },
            HostError::Injected {
                call: 0,
                what: "tap".into(),
            },
            HostError::BridgeNotFound {
                bridge: "br0".into(),
            }
            .with_undo_errors(vec![HostError::LinkNotFound {
                name: "vnet0".into(),
            }]),
        ];
        for e in &user {
            assert!(e.is_user_error(), "{e}");
        }
        for e in &faults {
            assert!(!e.is_user_error(), "{e}");
        }
        // The wrapped cause stays reachable.
        let e = HostError::netlink("add link 'vnet0'", io());
        assert!(std::error::Error::source(&e).is_some());
        assert!(std::error::Error::source(&faults[4]).is_some());
    }
}
