//! `<vcpu>` and `<cpu>` (mode, model, topology, features, NUMA cells).

use super::memory::scaled_kib;
use super::util::{sort_children, take_choice, take_idset, take_u32, unpositioned, IdSet};
use crate::error::ConfError;
use crate::xml::{Attr, Element, Extra, Pos};

/// `<vcpu placement cpuset current>N</vcpu>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vcpu {
    /// Where the element was (unknown when defaulted).
    pub pos: Pos,
    /// Maximum number of vCPUs.
    pub max: u32,
    /// Number online at boot, when lower than `max`.
    pub current: Option<u32>,
    /// `static` or `auto`.
    pub placement: Option<String>,
    /// Host CPUs the vCPUs may run on.
    pub cpuset: Option<IdSet>,
    /// Unknown attributes.
    pub extra: Extra,
}

impl Default for Vcpu {
    fn default() -> Self {
        Vcpu {
            pos: Pos::UNKNOWN,
            max: 1,
            current: None,
            placement: None,
            cpuset: None,
            extra: Extra::default(),
        }
    }
}

impl Vcpu {
    /// Reads `<vcpu>`.
    pub fn from_element(mut el: Element) -> Result<Vcpu, ConfError> {
        let pos = el.pos;
        let placement = take_choice(&mut el, "placement", &["static", "auto"])?;
        let cpuset = take_idset(&mut el, "cpuset")?;
        let current = take_u32(&mut el, "current")?;
        let text = el.take_text().unwrap_or_default();
        let max: u32 = el.parse_text(&text, "a positive number of vCPUs")?;
        if max == 0 {
            return Err(ConfError::InvalidText {
                pos,
                element: "vcpu".into(),
                value: text,
                expected: "a positive number of vCPUs".into(),
            });
        }
        Ok(Vcpu {
            pos,
            max,
            current,
            placement,
            cpuset,
            extra: el.into_extra(),
        })
    }

    /// Writes `<vcpu>`.
    pub fn to_element(&self) -> Element {
        Element::new("vcpu")
            .attr_opt("placement", self.placement.as_deref())
            .attr_opt("cpuset", self.cpuset.as_ref())
            .attr_opt("current", self.current.filter(|c| *c != self.max))
            .text(self.max)
            .with_extra(&self.extra)
    }

    /// vCPUs online at boot.
    pub fn online(&self) -> u32 {
        self.current.unwrap_or(self.max).min(self.max)
    }
}

/// `<cpu><model fallback vendor_id>name</model>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuModel {
    /// CPU model name (e.g. `qemu64`, `Haswell`).
    pub name: Option<String>,
    /// `allow` or `forbid`.
    pub fallback: Option<String>,
    /// Unknown attributes (e.g. `vendor_id`), kept.
    pub extra: Extra,
}

/// `<cpu><topology>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    /// Sockets.
    pub sockets: Option<u32>,
    /// Dies per socket.
    pub dies: Option<u32>,
    /// Clusters per die.
    pub clusters: Option<u32>,
    /// Cores per cluster.
    pub cores: Option<u32>,
    /// Threads per core.
    pub threads: Option<u32>,
    /// Unknown content.
    pub extra: Extra,
}

/// One `<cpu><numa><cell>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaCell {
    /// Where the element was.
    pub pos: Pos,
    /// Cell id (defaults to its index).
    pub id: u32,
    /// vCPUs of the cell.
    pub cpus: Option<IdSet>,
    /// Memory of the cell in KiB.
    pub memory_kib: u64,
    /// `memAccess='shared|private'`.
    pub mem_access: Option<String>,
    /// `discard='yes|no'`.
    pub discard: Option<String>,
    /// Unknown content (e.g. `<distances>`), kept.
    pub extra: Extra,
}

/// `<cpu>`: guest CPU model and topology.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cpu {
    /// Where the element was (unknown when defaulted).
    pub pos: Pos,
    /// `custom`, `host-model`, `host-passthrough` or `maximum` (None = custom).
    pub mode: Option<String>,
    /// `minimum`, `exact` or `strict`.
    pub match_: Option<String>,
    /// `none`, `partial` or `full`.
    pub check: Option<String>,
    /// `migratable='on|off'`.
    pub migratable: Option<String>,
    /// `<model>`.
    pub model: Option<CpuModel>,
    /// `<vendor>`.
    pub vendor: Option<String>,
    /// `<topology>`.
    pub topology: Option<Topology>,
    /// `<feature policy name>` elements, kept as written.
    pub features: Vec<Element>,
    /// `<numa><cell>` list.
    pub numa: Vec<NumaCell>,
    /// Unknown content of `<numa>`.
    pub numa_extra: Extra,
    /// Unknown content of `<cpu>` (e.g. `<cache>`, `<maxphysaddr>`).
    pub extra: Extra,
}

const CPU_ORDER: &[&str] = &[
    "model",
    "vendor",
    "topology",
    "cache",
    "maxphysaddr",
    "feature",
    "numa",
];

impl Cpu {
    /// Reads `<cpu>`.
    pub fn from_element(mut el: Element) -> Result<Cpu, ConfError> {
        let pos = el.pos;
        let mode = take_choice(
            &mut el,
            "mode",
            &["custom", "host-model", "host-passthrough", "maximum"],
        )?;
        let match_ = take_choice(&mut el, "match", &["minimum", "exact", "strict"])?;
        let check = take_choice(&mut el, "check", &["none", "partial", "full"])?;
        let migratable = super::util::take_on_off(&mut el, "migratable")?;
        let model = match el.take_one("model")? {
            None => None,
            Some(mut m) => {
                let fallback = take_choice(&mut m, "fallback", &["allow", "forbid"])?;
                let name = m.take_text();
                Some(CpuModel {
                    name,
                    fallback,
                    extra: m.into_extra(),
                })
            }
        };
        let vendor = el.take_one_text("vendor")?.map(|(t, _)| t);
        let topology = match el.take_one("topology")? {
            None => None,
            Some(mut t) => Some(Topology {
                sockets: take_u32(&mut t, "sockets")?,
                dies: take_u32(&mut t, "dies")?,
                clusters: take_u32(&mut t, "clusters")?,
                cores: take_u32(&mut t, "cores")?,
                threads: take_u32(&mut t, "threads")?,
                extra: t.into_extra(),
            }),
        };
        let features = el
            .take_children("feature")
            .iter()
            .map(unpositioned)
            .collect();
        let (numa, numa_extra) = match el.take_one("numa")? {
            None => (Vec::new(), Extra::default()),
            Some(mut n) => {
                let mut cells = Vec::new();
                for (i, c) in n.take_children("cell").into_iter().enumerate() {
                    cells.push(read_cell(c, i as u32)?);
                }
                (cells, n.into_extra())
            }
        };
        Ok(Cpu {
            pos,
            mode,
            match_,
            check,
            migratable,
            model,
            vendor,
            topology,
            features,
            numa,
            numa_extra,
            extra: el.into_extra(),
        })
    }

    /// The mode, `custom` when not given.
    pub fn mode(&self) -> &str {
        self.mode.as_deref().unwrap_or("custom")
    }

    /// The model name, if any.
    pub fn model_name(&self) -> Option<&str> {
        self.model.as_ref().and_then(|m| m.name.as_deref())
    }

    /// Writes `<cpu>` in libvirt's form.
    pub fn to_element(&self) -> Element {
        let custom = self.mode() == "custom";
        let has_model = self.model_name().is_some();
        let mut el = Element::new("cpu");
        if !custom || has_model {
            el.push_attr("mode", self.mode());
        }
        if custom && has_model {
            el.push_attr("match", self.match_.as_deref().unwrap_or("exact"));
        }
        if let Some(c) = &self.check {
            el.push_attr("check", c);
        }
        if let Some(m) = &self.migratable {
            el.push_attr("migratable", m);
        }
        if let Some(m) = &self.model {
            let mut me = Element::new("model");
            if custom && m.name.is_some() {
                me.push_attr("fallback", m.fallback.as_deref().unwrap_or("allow"));
            } else if let Some(f) = &m.fallback {
                me.push_attr("fallback", f);
            }
            let mut me = me.with_extra(&m.extra);
            me.text.clone_from(&m.name);
            el.children.push(me);
        }
        if let Some(v) = &self.vendor {
            el.children.push(Element::new("vendor").text(v));
        }
        if let Some(t) = &self.topology {
            el.children.push(
                Element::new("topology")
                    .attr_opt("sockets", t.sockets)
                    .attr_opt("dies", t.dies)
                    .attr_opt("clusters", t.clusters)
                    .attr_opt("cores", t.cores)
                    .attr_opt("threads", t.threads)
                    .with_extra(&t.extra),
            );
        }
        el.children.extend(self.features.iter().cloned());
        if !self.numa.is_empty() || !self.numa_extra.is_empty() {
            let mut n = Element::new("numa");
            for c in &self.numa {
                n.children.push(
                    Element::new("cell")
                        .attr("id", c.id)
                        .attr_opt("cpus", c.cpus.as_ref())
                        .attr("memory", c.memory_kib)
                        .attr("unit", "KiB")
                        .attr_opt("memAccess", c.mem_access.as_deref())
                        .attr_opt("discard", c.discard.as_deref())
                        .with_extra(&c.extra),
                );
            }
            el.children.push(n.with_extra(&self.numa_extra));
        }
        let mut el = el.with_extra(&self.extra);
        sort_children(&mut el, CPU_ORDER);
        el
    }

    /// The total memory of the NUMA cells, in KiB.
    pub fn numa_memory_kib(&self) -> u64 {
        self.numa
            .iter()
            .fold(0u64, |sum, c| sum.saturating_add(c.memory_kib))
    }
}

fn read_cell(mut c: Element, index: u32) -> Result<NumaCell, ConfError> {
    let pos = c.pos;
    let id = take_u32(&mut c, "id")?.unwrap_or(index);
    let cpus = take_idset(&mut c, "cpus")?;
    let unit = c.take_attr("unit");
    let memory: Attr = c.require_attr(
        "memory",
        "give the cell's memory size, e.g. memory='1048576' unit='KiB'",
    )?;
    let memory_kib = scaled_kib(&c, &memory.value, unit.as_ref(), Some(&memory))?;
    let mem_access = take_choice(&mut c, "memAccess", &["shared", "private"])?;
    let discard = super::util::take_yes_no(&mut c, "discard")?;
    Ok(NumaCell {
        pos,
        id,
        cpus,
        memory_kib,
        mem_access,
        discard,
        extra: c.into_extra(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn el(s: &str) -> Element {
        parse_document(s, Limits::default()).unwrap()
    }

    #[test]
    fn vcpu_round_trip() {
        let v = Vcpu::from_element(el(
            "<vcpu placement='static' cpuset='1,0' current='1'>2</vcpu>",
        ))
        .unwrap();
        assert_eq!(v.online(), 1);
        assert_eq!(
            write_document(&v.to_element()),
            "<vcpu placement='static' cpuset='0-1' current='1'>2</vcpu>\n"
        );
        assert!(Vcpu::from_element(el("<vcpu>0</vcpu>")).is_err());
        let e = Vcpu::from_element(el("<vcpu>two</vcpu>")).unwrap_err();
        assert!(e.to_string().contains("'two'"), "{e}");
    }

    #[test]
    fn cpu_numa_cells() {
        let c = Cpu::from_element(el(
            "<cpu mode='host-model'><topology sockets='1' cores='2' threads='1'/>\
             <numa><cell id='0' cpus='0-1' memory='1' unit='GiB' memAccess='shared'/></numa></cpu>",
        ))
        .unwrap();
        assert_eq!(c.numa_memory_kib(), 1 << 20);
        assert_eq!(
            write_document(&c.to_element()),
            "<cpu mode='host-model'>\n  <topology sockets='1' cores='2' threads='1'/>\n  <numa>\n    <cell id='0' cpus='0-1' memory='1048576' unit='KiB' memAccess='shared'/>\n  </numa>\n</cpu>\n"
        );
        let e =
            Cpu::from_element(el("<cpu><numa><cell id='0' cpus='0'/></numa></cpu>")).unwrap_err();
        assert!(e.to_string().contains("'memory'"), "{e}");
        let e = Cpu::from_element(el("<cpu mode='turbo'/>")).unwrap_err();
        assert!(e.to_string().contains("'turbo'"), "{e}");
    }

    #[test]
    fn custom_model_gets_match_and_fallback() {
        let c = Cpu::from_element(el(
            "<cpu><model>Haswell</model><feature policy='require' name='vmx'/></cpu>",
        ))
        .unwrap();
        assert_eq!(
            write_document(&c.to_element()),
            "<cpu mode='custom' match='exact'>\n  <model fallback='allow'>Haswell</model>\n  <feature policy='require' name='vmx'/>\n</cpu>\n"
        );
    }
}
