//! Guest RAM: `-m`, the memory backend objects (`memory-backend-memfd|file|ram`) and NUMA
//! nodes.
//!
//! Guest RAM gets a backend object when it must be shared (vhost-user back ends map it) or
//! when `<memoryBacking><source>` asks for memfd or file. Shared memory without a source is a
//! memfd (no files to clean up); libvirt would use a file under its state directory there.

use std::path::Path;

use virtnet_conf::domain::{MemoryAccess, MemorySource, NumaCell};
use virtnet_conf::interface::InterfaceType;
use virtnet_conf::Domain;

use super::opts::{json_arg, Props};
use crate::error::QemuError;

/// Guest RAM sizes are rounded up to whole MiB, as libvirt does for x86 before it builds the
/// command line (QEMU wants page-aligned sizes; libvirt picks 1 MiB).
fn align_kib(kib: u64) -> u64 {
    kib.div_ceil(1024) * 1024
}

/// The id of the whole-guest RAM backend, as libvirt names it (`-machine memory-backend=`).
pub(crate) const RAM_ID: &str = "pc.ram";

/// What the memory part adds to the command line.
#[derive(Debug, Default)]
pub(crate) struct MemoryArgs {
    /// `-m` and the backend `-object`s (placed after `-cpu`).
    pub early: Vec<String>,
    /// `-numa` nodes (placed after `-smp`).
    pub numa: Vec<String>,
    /// Whether `-machine` must name [`RAM_ID`] as its memory backend.
    pub machine_backend: bool,
}

fn unsupported(device: &str, message: impl Into<String>) -> QemuError {
    QemuError::UnsupportedDevice {
        device: device.to_string(),
        message: message.into(),
    }
}

/// Builds `-m`, the memory backends and the NUMA nodes. `memory_dir` is where file-backed RAM
/// lives (`<source type='file'/>`).
pub(crate) fn memory_args(
    domain: &Domain,
    memory_dir: Option<&Path>,
) -> Result<MemoryArgs, QemuError> {
    let backing = domain.memory_backing();
    if backing.is_some_and(|b| b.hugepages.is_some()) {
        return Err(unsupported(
            "<memoryBacking><hugepages>",
            "hugepages are not supported yet: remove <hugepages> (use <source type='memfd'/> \
             and <access mode='shared'/> for vhost-user)",
        ));
    }
    let cells = domain.numa_cells();
    let total = if cells.is_empty() {
        align_kib(domain.memory_kib())
    } else {
        cells.iter().map(|c| align_kib(c.memory_kib)).sum()
    };
    if total == 0 {
        return Err(unsupported(
            "<memory>",
            "the guest has no memory: set <memory>",
        ));
    }
    let mut out = MemoryArgs::default();
    let mut m = format!("size={total}k");
    if let (Some(max), Some(slots)) = (domain.memory.max_kib, domain.memory.max_slots) {
        m.push_str(&format!(",slots={slots},maxmem={}k", align_kib(max)));
    }
    out.early.push("-m".into());
    out.early.push(m);

    let source = backing.and_then(|b| b.source);
    let global = backing.and_then(|b| b.access);
    let has_vhost_user = domain
        .devices
        .interfaces
        .iter()
        .any(|i| i.type_() == InterfaceType::VhostUser);
    if cells.is_empty() {
        let shared = global == Some(MemoryAccess::Shared);
        let needed = shared || matches!(source, Some(MemorySource::Memfd | MemorySource::File));
        if needed {
            let obj = backend_props(
                domain,
                RAM_ID,
                total,
                source,
                shared,
                memory_dir,
                has_vhost_user,
            )?;
            out.early.push("-object".into());
            out.early.push(json_arg(&obj));
            out.machine_backend = true;
        }
        return Ok(out);
    }

    let sum: u64 = cells.iter().map(|c| c.memory_kib).sum();
    if sum != domain.memory_kib() {
        return Err(unsupported(
            "<cpu><numa>",
            format!(
                "the NUMA cells have {sum} KiB in all but <memory> is {} KiB: make them equal",
                domain.memory_kib()
            ),
        ));
    }
    for cell in cells {
        let shared = cell_access(cell).or(global) == Some(MemoryAccess::Shared);
        let id = format!("ram-node{}", cell.id);
        let obj = backend_props(
            domain,
            &id,
            align_kib(cell.memory_kib),
            source,
            shared,
            memory_dir,
            has_vhost_user,
        )?;
        out.early.push("-object".into());
        out.early.push(json_arg(&obj));
    }
    for cell in cells {
        let mut node = format!("node,nodeid={}", cell.id);
        if let Some(cpus) = &cell.cpus {
            // QEMU takes one `cpus=` per range: "0-1,3" → cpus=0-1,cpus=3.
            for range in cpus.to_string().split(',') {
                node.push_str(&format!(",cpus={range}"));
            }
        }
        node.push_str(&format!(",memdev=ram-node{}", cell.id));
        out.numa.push("-numa".into());
        out.numa.push(node);
    }
    Ok(out)
}

fn cell_access(cell: &NumaCell) -> Option<MemoryAccess> {
    match cell.mem_access.as_deref() {
        Some("shared") => Some(MemoryAccess::Shared),
        Some("private") => Some(MemoryAccess::Private),
        _ => None,
    }
}

/// One memory backend object: memfd, file or ram, with `share` when shared.
fn backend_props(
    domain: &Domain,
    id: &str,
    kib: u64,
    source: Option<MemorySource>,
    shared: bool,
    memory_dir: Option<&Path>,
    has_vhost_user: bool,
) -> Result<serde_json::Value, QemuError> {
    let backing = domain.memory_backing();
    let mut p = Props::new();
    let qom_type = match source {
        Some(MemorySource::File) => "memory-backend-file",
        Some(MemorySource::Memfd) => "memory-backend-memfd",
        Some(MemorySource::Anonymous) if shared && has_vhost_user => {
            return Err(unsupported(
                "<memoryBacking><source type='anonymous'/>",
                "shared anonymous memory has no file descriptor a vhost-user back end could \
                 map: use <source type='memfd'/>",
            ))
        }
        Some(MemorySource::Anonymous) => "memory-backend-ram",
        None if shared => "memory-backend-memfd",
        None => "memory-backend-ram",
    };
    p.put("qom-type", qom_type).put("id", id);
    if qom_type == "memory-backend-file" {
        let dir = memory_dir.ok_or_else(|| {
            unsupported(
                "<memoryBacking><source type='file'/>",
                "file-backed guest RAM needs a directory for its files, and none was given \
                 (RuntimePaths::memory_dir); or use <source type='memfd'/>",
            )
        })?;
        p.put("mem-path", dir.to_string_lossy().into_owned());
    }
    if shared {
        p.put("share", true);
    }
    let immediate = backing
        .and_then(|b| b.allocation.as_ref())
        .and_then(|a| a.get_attr("mode"))
        == Some("immediate");
    if immediate {
        p.put("prealloc", true);
    }
    if backing.is_some_and(|b| b.discard) {
        p.put("discard-data", true);
    }
    p.put("size", kib * 1024);
    Ok(p.into_value())
}

/// `-overcommit mem-lock=on` when `<memoryBacking><locked/>`.
pub(crate) fn lock_args(domain: &Domain) -> Vec<String> {
    if domain.memory_backing().is_some_and(|b| b.locked) {
        vec!["-overcommit".into(), "mem-lock=on".into()]
    } else {
        Vec::new()
    }
}
