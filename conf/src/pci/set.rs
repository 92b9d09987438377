//! The guest PCI address set: buses with what they accept, and which slot functions are used
//! (after libvirt's `virDomainPCIAddressSet`).

use crate::address::PciAddress;

/// What a device needs from, or a bus offers to, a PCI connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Flags(pub u32);

impl Flags {
    pub const NONE: Flags = Flags(0);
    pub const PCI_DEVICE: Flags = Flags(1 << 0);
    pub const PCIE_DEVICE: Flags = Flags(1 << 1);
    pub const PCI_BRIDGE: Flags = Flags(1 << 2);
    pub const PCIE_ROOT_PORT: Flags = Flags(1 << 3);
    pub const PCIE_SWITCH_UP: Flags = Flags(1 << 4);
    pub const PCIE_SWITCH_DOWN: Flags = Flags(1 << 5);
    pub const DMI_TO_PCI_BRIDGE: Flags = Flags(1 << 6);
    pub const PCIE_TO_PCI_BRIDGE: Flags = Flags(1 << 7);
    pub const PCI_EXPANDER_BUS: Flags = Flags(1 << 8);
    pub const PCIE_EXPANDER_BUS: Flags = Flags(1 << 9);
    pub const TYPES: Flags = Flags((1 << 10) - 1);
    pub const ENDPOINT: Flags = Flags(1 | 2);
    pub const AUTOASSIGN: Flags = Flags(1 << 16);
    pub const HOTPLUGGABLE: Flags = Flags(1 << 17);
    pub const AGGREGATE_SLOT: Flags = Flags(1 << 18);
    pub const INTEGRATED: Flags = Flags(1 << 19);

    pub fn has(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_none(self) -> bool {
        self.0 & Flags::TYPES.0 == 0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

/// The connection type a PCI controller model plugs in with.
pub(crate) fn controller_connect(model: &str) -> Flags {
    match model {
        "pci-bridge" => Flags::PCI_BRIDGE,
        "pci-expander-bus" => Flags::PCI_EXPANDER_BUS,
        "pcie-expander-bus" => Flags::PCIE_EXPANDER_BUS,
        "dmi-to-pci-bridge" => Flags::DMI_TO_PCI_BRIDGE,
        "pcie-to-pci-bridge" => Flags::PCIE_TO_PCI_BRIDGE,
        "pcie-root-port" => Flags::PCIE_ROOT_PORT | Flags::AGGREGATE_SLOT,
        "pcie-switch-upstream-port" => Flags::PCIE_SWITCH_UP,
        "pcie-switch-downstream-port" => Flags::PCIE_SWITCH_DOWN,
        _ => Flags::NONE,
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    functions: u8,
    aggregate: bool,
}

/// One bus (a PCI controller's downstream side).
#[derive(Debug, Clone)]
pub(crate) struct Bus {
    /// The controller model that provides the bus.
    pub model: String,
    flags: Flags,
    min_slot: u8,
    max_slot: u8,
    slots: [Slot; 32],
}

impl Bus {
    pub fn new(model: &str, hotplug: bool) -> Bus {
        let hp = if hotplug {
            Flags::HOTPLUGGABLE
        } else {
            Flags::NONE
        };
        let a = Flags::AUTOASSIGN;
        let (flags, min, max) = match model {
            "pci-root" => (
                a | Flags::PCI_DEVICE | Flags::PCI_BRIDGE | Flags::PCI_EXPANDER_BUS | hp,
                1,
                31,
            ),
            "pci-bridge" | "pcie-to-pci-bridge" => {
                (a | Flags::PCI_DEVICE | Flags::PCI_BRIDGE | hp, 1, 31)
            }
            "pci-expander-bus" => (a | Flags::PCI_DEVICE | Flags::PCI_BRIDGE | hp, 0, 31),
            "pcie-root" => (
                Flags::PCIE_DEVICE
                    | Flags::PCIE_ROOT_PORT
                    | Flags::DMI_TO_PCI_BRIDGE
                    | Flags::PCIE_EXPANDER_BUS,
                1,
                31,
            ),
            "dmi-to-pci-bridge" => (Flags::PCI_DEVICE | Flags::PCI_BRIDGE, 0, 31),
            "pcie-root-port" | "pcie-switch-downstream-port" => (
                a | Flags::PCIE_DEVICE | Flags::PCIE_SWITCH_UP | Flags::PCIE_TO_PCI_BRIDGE | hp,
                0,
                0,
            ),
            "pcie-switch-upstream-port" => (Flags::PCIE_SWITCH_DOWN, 0, 31),
            "pcie-expander-bus" => (Flags::PCIE_ROOT_PORT | Flags::DMI_TO_PCI_BRIDGE, 0, 31),
            _ => (Flags::NONE, 0, 31),
        };
        Bus {
            model: model.to_string(),
            flags,
            min_slot: min,
            max_slot: max,
            slots: [Slot::default(); 32],
        }
    }

    pub fn is_fully_reserved(&self) -> bool {
        (self.min_slot..=self.max_slot).all(|s| self.slots[s as usize].functions != 0)
    }
}

/// The buses of a guest and their use.
#[derive(Debug, Clone)]
pub(crate) struct AddrSet {
    pub buses: Vec<Bus>,
    /// First pass: buses are added when full instead of failing.
    pub dry_run: bool,
}

fn compatible(
    addr: &PciAddress,
    bus_flags: Flags,
    dev: Flags,
    from_config: bool,
) -> Result<(), String> {
    let mut bus_flags = bus_flags;
    let mut dev = dev;
    let s = addr.to_string();
    if dev.has(Flags::INTEGRATED) {
        if addr.bus == 0 {
            bus_flags = bus_flags | Flags::AUTOASSIGN;
        } else {
            return Err(format!(
                "The device at PCI address {s} needs to be an integrated device (bus=0)"
            ));
        }
    }
    if from_config {
        if bus_flags.has(Flags::ENDPOINT) {
            bus_flags = bus_flags | Flags::ENDPOINT;
        }
        if dev.has(Flags::PCI_BRIDGE) {
            dev = dev | Flags::PCI_DEVICE;
        }
    } else if dev.has(Flags::AUTOASSIGN) && !bus_flags.has(Flags::AUTOASSIGN) {
        return Err(format!(
            "The device at PCI address {s} was auto-assigned this address, but the PCI controller with index='{}' doesn't allow auto-assignment",
            addr.bus
        ));
    }
    if dev.has(Flags::HOTPLUGGABLE) && !bus_flags.has(Flags::HOTPLUGGABLE) {
        return Err(format!(
            "The device at PCI address {s} requires hotplug capability, but the PCI controller with index='{}' doesn't support hotplug",
            addr.bus
        ));
    }
    if (dev & bus_flags & Flags::TYPES).0 == 0 {
        let what = [
            (Flags::PCI_DEVICE, "standard PCI device"),
            (Flags::PCIE_DEVICE, "PCI Express device"),
            (Flags::PCIE_ROOT_PORT, "pcie-root-port"),
            (Flags::PCIE_SWITCH_UP, "pcie-switch-upstream-port"),
            (Flags::PCIE_SWITCH_DOWN, "pcie-switch-downstream-port"),
            (Flags::DMI_TO_PCI_BRIDGE, "dmi-to-pci-bridge"),
            (Flags::PCIE_TO_PCI_BRIDGE, "pcie-to-pci-bridge"),
            (Flags::PCI_EXPANDER_BUS, "pci-expander-bus"),
            (Flags::PCIE_EXPANDER_BUS, "pcie-expander-bus"),
            (Flags::PCI_BRIDGE, "pci-bridge"),
        ]
        .iter()
        .find(|(f, _)| dev.has(*f))
        .map_or("device of unknown kind", |(_, w)| *w);
        return Err(format!(
            "The device at PCI address {s} cannot be plugged into the PCI controller with index='{}'. It requires a controller that accepts a {what}.",
            addr.bus
        ));
    }
    Ok(())
}

impl AddrSet {
    pub fn new(buses: Vec<Bus>, dry_run: bool) -> AddrSet {
        AddrSet { buses, dry_run }
    }

    /// Whether any function of the slot is used.
    pub fn slot_in_use(&self, addr: &PciAddress) -> bool {
        self.buses
            .get(addr.bus as usize)
            .is_some_and(|b| b.slots[addr.slot as usize].functions != 0)
    }

    /// Checks that `addr` exists and suits a device with `flags`.
    pub fn validate(
        &self,
        addr: &PciAddress,
        flags: Flags,
        from_config: bool,
    ) -> Result<(), String> {
        let s = addr.to_string();
        if self.buses.is_empty() {
            return Err("No PCI buses available".into());
        }
        if addr.domain != 0 {
            return Err(format!(
                "Invalid PCI address {s}. Only PCI domain 0 is available"
            ));
        }
        let bus = self.buses.get(addr.bus as usize).ok_or_else(|| {
            format!(
                "Invalid PCI address {s}. Only PCI buses up to {} are available",
                self.buses.len() - 1
            )
        })?;
        compatible(addr, bus.flags, flags, from_config)?;
        if addr.slot < bus.min_slot {
            return Err(format!(
                "Invalid PCI address {s}. slot must be >= {}",
                bus.min_slot
            ));
        }
        if addr.slot > bus.max_slot {
            return Err(format!(
                "Invalid PCI address {s}. slot must be <= {}",
                bus.max_slot
            ));
        }
        Ok(())
    }

    /// Adds buses so that `addr.bus` exists (first pass only); may bump `addr.bus` when a
    /// PCIe-only guest needs a pcie-root-port + pcie-to-pci-bridge pair for a PCI device.
    fn grow(&mut self, addr: &mut PciAddress, flags: Flags) -> Result<(), String> {
        let mut add = addr.bus as i64 - self.buses.len() as i64 + 1;
        if add <= 0 {
            return Ok(());
        }
        let model;
        let mut need_pcie_to_pci = false;
        if flags.has(Flags::PCI_DEVICE) {
            model = "pci-bridge";
            if !self.buses.iter().any(|b| b.flags.has(Flags::PCI_BRIDGE)) && add == 1 {
                need_pcie_to_pci = true;
                add += 1;
                addr.bus += 1;
            }
        } else if flags.has(Flags::PCIE_DEVICE) || flags.has(Flags::PCIE_SWITCH_UP) {
            model = "pcie-root-port";
        } else {
            let cont = [
                (Flags::PCIE_ROOT_PORT, "pcie-root-port"),
                (Flags::PCIE_SWITCH_UP, "pcie-switch-upstream-port"),
                (Flags::PCIE_SWITCH_DOWN, "pcie-switch-downstream-port"),
                (Flags::DMI_TO_PCI_BRIDGE, "dmi-to-pci-bridge"),
                (Flags::PCI_EXPANDER_BUS, "pci-expander-bus"),
                (Flags::PCIE_EXPANDER_BUS, "pcie-expander-bus"),
                (Flags::PCI_BRIDGE, "pci-bridge"),
            ]
            .iter()
            .find(|(f, _)| flags.has(*f));
            return Err(match cont {
                Some((_, m)) => format!(
                    "a PCI slot is needed to connect a PCI controller model='{m}', but none is available, and it cannot be automatically added"
                ),
                None => "Cannot automatically add a new PCI bus for this device".into(),
            });
        }
        if self.buses.len() as i64 + add > 256 {
            return Err("No more available PCI slots: all 256 PCI buses are in use".into());
        }
        if need_pcie_to_pci {
            let mut port = Bus::new("pcie-root-port", true);
            port.flags = Flags::PCIE_TO_PCI_BRIDGE;
            self.buses.push(port);
            self.buses.push(Bus::new("pcie-to-pci-bridge", true));
            add -= 2;
        }
        for _ in 0..add {
            self.buses.push(Bus::new(model, true));
        }
        Ok(())
    }

    /// Marks one function as used (libvirt's virDomainPCIAddressReserveAddrInternal).
    pub fn reserve(
        &mut self,
        addr: &PciAddress,
        flags: Flags,
        from_config: bool,
    ) -> Result<(), String> {
        let mut addr = *addr;
        if self.dry_run {
            self.grow(&mut addr, flags)?;
        }
        self.validate(&addr, flags, from_config)?;
        let slot = &mut self.buses[addr.bus as usize].slots[addr.slot as usize];
        if slot.functions & (1 << addr.function) != 0 {
            return Err(format!("Attempted double use of PCI Address {addr}"));
        }
        if slot.functions == 0 && flags.has(Flags::AGGREGATE_SLOT) {
            slot.aggregate = true;
        }
        slot.functions |= 1 << addr.function;
        Ok(())
    }

    fn find_on_bus(&self, bus: u8, flags: Flags, function: Option<u8>) -> Option<PciAddress> {
        let b = &self.buses[bus as usize];
        let mut a = PciAddress {
            domain: 0,
            bus,
            slot: b.min_slot,
            function: function.unwrap_or(0),
        };
        compatible(&a, b.flags, flags, false).ok()?;
        while a.slot <= b.max_slot {
            let s = b.slots[a.slot as usize];
            if s.functions == 0 {
                return Some(a);
            }
            if flags.has(Flags::AGGREGATE_SLOT) && s.aggregate {
                if s.functions & (1 << a.function) == 0 {
                    return Some(a);
                }
                if function.is_none() {
                    if let Some(f) = (0..8u8).find(|f| s.functions & (1 << f) == 0) {
                        a.function = f;
                        return Some(a);
                    }
                    a.function = 0;
                }
            }
            a.slot += 1;
        }
        None
    }

    /// The first free slot (or aggregate function) for a device with `flags`.
    pub fn next_addr(&mut self, flags: Flags, function: Option<u8>) -> Result<PciAddress, String> {
        if self.buses.is_empty() {
            return Err("No PCI buses available".into());
        }
        for bus in 0..self.buses.len() {
            if let Some(a) = self.find_on_bus(bus as u8, flags, function) {
                return Ok(a);
            }
        }
        if self.dry_run {
            let mut a = PciAddress {
                domain: 0,
                bus: u8::try_from(self.buses.len()).map_err(|_| {
                    "No more available PCI slots: all 256 PCI buses are in use".to_string()
                })?,
                slot: 0,
                function: function.unwrap_or(0),
            };
            self.grow(&mut a, flags)?;
            a.slot = self.buses[a.bus as usize].min_slot;
            return Ok(a);
        }
        Err("No more available PCI slots".into())
    }

    /// Finds and reserves the next address for a device with `flags`.
    pub fn reserve_next(
        &mut self,
        flags: Flags,
        function: Option<u8>,
    ) -> Result<PciAddress, String> {
        let a = self.next_addr(flags, function)?;
        self.reserve(&a, flags, false)?;
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pci() -> Flags {
        Flags::PCI_DEVICE | Flags::AUTOASSIGN
    }

    #[test]
    fn first_free_slot_on_pci_root() {
        let mut s = AddrSet::new(vec![Bus::new("pci-root", true)], false);
        s.reserve(&PciAddress::slot(1), pci(), true).unwrap();
        s.reserve(&PciAddress::slot(2), pci(), true).unwrap();
        assert_eq!(s.reserve_next(pci(), None).unwrap(), PciAddress::slot(3));
        assert!(s
            .reserve(&PciAddress::slot(3), pci(), true)
            .unwrap_err()
            .contains("double use"));
        for _ in 4..=31 {
            s.reserve_next(pci(), None).unwrap();
        }
        assert_eq!(
            s.reserve_next(pci(), None).unwrap_err(),
            "No more available PCI slots"
        );
        assert!(s
            .validate(
                &PciAddress {
                    bus: 1,
                    ..PciAddress::slot(1)
                },
                pci(),
                true
            )
            .is_err());
        assert!(s
            .validate(&PciAddress::slot(0), pci(), true)
            .unwrap_err()
            .contains(">= 1"));
    }

    #[test]
    fn pcie_root_ports_aggregate_and_grow() {
        let mut s = AddrSet::new(vec![Bus::new("pcie-root", false)], true);
        let virtio = Flags::PCIE_DEVICE | Flags::AUTOASSIGN;
        let a = s.reserve_next(virtio, None).unwrap();
        assert_eq!((a.bus, a.slot), (1, 0));
        assert_eq!(s.buses[1].model, "pcie-root-port");
        let rp = controller_connect("pcie-root-port");
        let p0 = s.reserve_next(rp, None).unwrap();
        let p1 = s.reserve_next(rp, None).unwrap();
        assert_eq!((p0.slot, p0.function), (1, 0));
        assert_eq!((p1.slot, p1.function), (1, 1));
        // A conventional PCI device on a PCIe-only guest needs a root port and a bridge.
        let b = s.reserve_next(pci(), None).unwrap();
        assert_eq!(b.bus, 3);
        assert_eq!(s.buses[3].model, "pcie-to-pci-bridge");
    }
}
