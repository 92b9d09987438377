//! Port isolation (libvirt `<port isolated='yes'/>`, the Linux bridge's `isolated on`): an
//! isolated port exchanges frames only with ports that are not isolated.

/// Whether a frame from a port (`src_isolated`) may be delivered to another
/// (`dst_isolated`): unicast and flooded frames alike.
pub fn may_reach(src_isolated: bool, dst_isolated: bool) -> bool {
    !(src_isolated && dst_isolated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_two_isolated_ports_are_cut_off() {
        assert!(may_reach(false, false));
        assert!(may_reach(true, false));
        assert!(may_reach(false, true));
        assert!(!may_reach(true, true));
    }
}
