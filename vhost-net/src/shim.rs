//! A relay between QEMU and vhost-user-backend's request handler that smooths over one
//! ordering difference.
//!
//! QEMU 7.2's virtio-net sends `SET_VRING_ENABLE` as soon as the guest driver sets up the
//! queue pairs, which is before `SET_FEATURES` (QEMU only checks that the back end
//! *offered* PROTOCOL_FEATURES). The `vhost` crate rejects `SET_VRING_ENABLE` until
//! PROTOCOL_FEATURES has been *acknowledged* by `SET_FEATURES`, and a rejected request
//! ends the connection: QEMU reconnects and the same happens again, forever. The relay
//! answers such early requests itself (an ack when one is asked for), remembers the
//! last state asked for each vring, and replays it to the back end right after
//! `SET_FEATURES` (QEMU does not send it again when it starts the device).
//!
//! A second difference: with more than one queue pair QEMU 7.2 runs one vhost device per
//! pair over the one connection, and each sends `ADD_MEM_REG` for every guest region (only
//! `SET_MEM_TABLE` is sent once). vhost-user-backend refuses a region that overlaps one
//! already mapped, which would end the connection. The relay counts identical regions:
//! a repeat `ADD_MEM_REG` is answered here, and `REM_MEM_REG` reaches the back end only when
//! the last device that added the region removes it. Everything else is forwarded
//! unchanged, file descriptors included.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const HDR: usize = 12;
const MAX_FDS: usize = 32;
const MAX_PAYLOAD: usize = 64 * 1024;
const REQ_SET_FEATURES: u32 = 2;
const REQ_RESET_OWNER: u32 = 4;
const REQ_RESET_DEVICE: u32 = 34;
const REQ_SET_VRING_ENABLE: u32 = 18;
const REQ_SET_MEM_TABLE: u32 = 5;
const REQ_ADD_MEM_REG: u32 = 37;
const REQ_REM_MEM_REG: u32 = 38;
/// ADD/REM_MEM_REG payload: 8 bytes of padding, then guest address, size, user address and
/// mmap offset (u64 each).
const MEM_REG_PAYLOAD: usize = 40;
const FLAG_VERSION: u32 = 0x1;
const FLAG_REPLY: u32 = 0x4;
const FLAG_NEED_REPLY: u32 = 0x8;

/// One message: header, payload and the descriptors that came with it.
struct Msg {
    hdr: [u8; HDR],
    payload: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Msg {
    fn request(&self) -> u32 {
        u32::from_le_bytes([self.hdr[0], self.hdr[1], self.hdr[2], self.hdr[3]])
    }

    fn flags(&self) -> u32 {
        u32::from_le_bytes([self.hdr[4], self.hdr[5], self.hdr[6], self.hdr[7]])
    }
}

fn recv_msg(s: &UnixStream) -> io::Result<Msg> {
    let mut hdr = [0u8; HDR];
    let mut cbuf = [0u64; (MAX_FDS * 4 + 64) / 8];
    let mut iov = libc::iovec {
        iov_base: hdr.as_mut_ptr() as *mut libc::c_void,
        iov_len: HDR,
    };
    // SAFETY: msghdr is plain data; zeroed is a valid initial state.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    mh.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: every pointer in `mh` refers to a live local buffer of the stated size.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut mh, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel just wrote into `cbuf`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    let mut r = s;
    r.read_exact(&mut hdr[n as usize..])?;
    let size = u32::from_le_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]) as usize;
    if size > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "vhost-user message too large",
        ));
    }
    let mut payload = vec![0u8; size];
    r.read_exact(&mut payload)?;
    Ok(Msg { hdr, payload, fds })
}

fn send_msg(s: &UnixStream, m: &Msg) -> io::Result<()> {
    let iov = [
        libc::iovec {
            iov_base: m.hdr.as_ptr() as *mut libc::c_void,
            iov_len: HDR,
        },
        libc::iovec {
            iov_base: m.payload.as_ptr() as *mut libc::c_void,
            iov_len: m.payload.len(),
        },
    ];
    let mut cbuf = [0u64; (MAX_FDS * 4 + 64) / 8];
    // SAFETY: msghdr is plain data; zeroed is a valid initial state.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = iov.as_ptr() as *mut libc::iovec;
    mh.msg_iovlen = if m.payload.is_empty() { 1 } else { 2 };
    if !m.fds.is_empty() {
        let bytes = std::mem::size_of::<RawFd>() * m.fds.len();
        // SAFETY: cbuf is large enough for MAX_FDS descriptors; we fill one SCM_RIGHTS
        // control message with the raw fds we own.
        unsafe {
            mh.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
            mh.msg_controllen = libc::CMSG_SPACE(bytes as u32) as _;
            let c = libc::CMSG_FIRSTHDR(&mh);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes as u32) as _;
            let data = libc::CMSG_DATA(c) as *mut RawFd;
            for (i, fd) in m.fds.iter().enumerate() {
                std::ptr::write_unaligned(data.add(i), fd.as_raw_fd());
            }
        }
    }
    // SAFETY: `mh` points at live buffers for the duration of the call.
    let n = unsafe { libc::sendmsg(s.as_raw_fd(), &mh, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let total = HDR + m.payload.len();
    let n = n as usize;
    if n < total {
        // The descriptors went with the first byte; the rest is plain data.
        let rest: Vec<u8> = m
            .hdr
            .iter()
            .chain(m.payload.iter())
            .copied()
            .skip(n)
            .collect();
        let mut w = s;
        w.write_all(&rest)?;
    }
    Ok(())
}

/// The positive `REPLY_ACK` answer to request `m`.
fn ack_for(m: &Msg) -> Msg {
    let mut hdr = m.hdr;
    hdr[4..8].copy_from_slice(&(FLAG_VERSION | FLAG_REPLY).to_le_bytes());
    hdr[8..12].copy_from_slice(&8u32.to_le_bytes());
    Msg {
        hdr,
        payload: vec![0u8; 8],
        fds: Vec::new(),
    }
}

/// Guest memory regions added with `ADD_MEM_REG`, with how many devices added each.
#[derive(Default)]
struct RegionCounts {
    regions: Vec<([u8; 32], u32)>,
}

/// What to do with a memory-region request.
#[derive(Debug, PartialEq, Eq)]
enum RegionAction {
    /// Send it on to the back end.
    Forward,
    /// Another device holds the same region: answer here, do not forward.
    AnswerHere,
}

impl RegionCounts {
    fn key(payload: &[u8]) -> Option<[u8; 32]> {
        payload.get(8..MEM_REG_PAYLOAD)?.try_into().ok()
    }

    /// Accounts for request `m` (ADD/REM_MEM_REG, SET_MEM_TABLE, resets).
    fn on_request(&mut self, request: u32, payload: &[u8]) -> RegionAction {
        match request {
            REQ_SET_MEM_TABLE | REQ_RESET_OWNER | REQ_RESET_DEVICE => {
                self.regions.clear();
                RegionAction::Forward
            }
            REQ_ADD_MEM_REG => {
                let Some(key) = Self::key(payload) else {
                    return RegionAction::Forward;
                };
                match self.regions.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => {
                        *n += 1;
                        RegionAction::AnswerHere
                    }
                    None => {
                        self.regions.push((key, 1));
                        RegionAction::Forward
                    }
                }
            }
            REQ_REM_MEM_REG => {
                // QEMU names the region by guest address and size (user address too).
                let Some(key) = Self::key(payload) else {
                    return RegionAction::Forward;
                };
                let same = |k: &[u8; 32]| k[..24] == key[..24];
                match self.regions.iter().position(|(k, _)| same(k)) {
                    Some(i) if self.regions[i].1 > 1 => {
                        self.regions[i].1 -= 1;
                        RegionAction::AnswerHere
                    }
                    Some(i) => {
                        self.regions.remove(i);
                        RegionAction::Forward
                    }
                    None => RegionAction::Forward,
                }
            }
            _ => RegionAction::Forward,
        }
    }
}

/// A running relay; it ends (shutting both sockets) when either side closes.
pub struct Relay {
    threads: Vec<JoinHandle<()>>,
    qemu: UnixStream,
    backend: UnixStream,
}

impl Relay {
    /// Relays between `qemu` (the frontend's connection) and `backend` (the back end's).
    pub fn start(qemu: UnixStream, backend: UnixStream) -> io::Result<Relay> {
        let to_qemu = Arc::new(Mutex::new(qemu.try_clone()?));
        let (q_in, b_out) = (qemu.try_clone()?, backend.try_clone()?);
        let (b_in, tq) = (backend.try_clone()?, to_qemu.clone());
        let (qa, ba) = (qemu.try_clone()?, backend.try_clone()?);
        let (qb, bb) = (qemu.try_clone()?, backend.try_clone()?);
        let t1 = std::thread::Builder::new()
            .name("vsw-relay-fe".into())
            .spawn(move || {
                let mut features_set = false;
                // Early enables by vring index: replayed right after SET_FEATURES.
                let mut early: Vec<(u32, [u8; 8])> = Vec::new();
                let mut regions = RegionCounts::default();
                while let Ok(m) = recv_msg(&q_in) {
                    log::debug!(
                        "vhost-user request {} flags {:#x} size {} fds {} {:?}",
                        m.request(),
                        m.flags(),
                        m.payload.len(),
                        m.fds.len(),
                        &m.payload[..m.payload.len().min(8)]
                    );
                    if regions.on_request(m.request(), &m.payload) == RegionAction::AnswerHere {
                        if m.flags() & FLAG_NEED_REPLY != 0 {
                            let q = tq.lock().unwrap_or_else(|e| e.into_inner());
                            if send_msg(&q, &ack_for(&m)).is_err() {
                                break;
                            }
                        }
                        continue;
                    }
                    match m.request() {
                        // After a reset the features must be set again first.
                        REQ_RESET_OWNER | REQ_RESET_DEVICE => features_set = false,
                        REQ_SET_FEATURES => {
                            features_set = true;
                            if send_msg(&b_out, &m).is_err() {
                                break;
                            }
                            for (_, state) in early.drain(..) {
                                let mut hdr = [0u8; HDR];
                                hdr[0..4].copy_from_slice(&REQ_SET_VRING_ENABLE.to_le_bytes());
                                hdr[4..8].copy_from_slice(&FLAG_VERSION.to_le_bytes());
                                hdr[8..12].copy_from_slice(&8u32.to_le_bytes());
                                let replay = Msg {
                                    hdr,
                                    payload: state.to_vec(),
                                    fds: Vec::new(),
                                };
                                if send_msg(&b_out, &replay).is_err() {
                                    break;
                                }
                            }
                            continue;
                        }
                        REQ_SET_VRING_ENABLE if !features_set => {
                            if let Ok(state) = <[u8; 8]>::try_from(&m.payload[..]) {
                                let index =
                                    u32::from_le_bytes([state[0], state[1], state[2], state[3]]);
                                early.retain(|(i, _)| *i != index);
                                early.push((index, state));
                            }
                            if m.flags() & FLAG_NEED_REPLY != 0 {
                                let q = tq.lock().unwrap_or_else(|e| e.into_inner());
                                if send_msg(&q, &ack_for(&m)).is_err() {
                                    break;
                                }
                            }
                            continue;
                        }
                        _ => {}
                    }
                    if send_msg(&b_out, &m).is_err() {
                        break;
                    }
                }
                let _ = qa.shutdown(std::net::Shutdown::Both);
                let _ = ba.shutdown(std::net::Shutdown::Both);
            })?;
        let t2 = std::thread::Builder::new()
            .name("vsw-relay-be".into())
            .spawn(move || {
                while let Ok(m) = recv_msg(&b_in) {
                    log::debug!(
                        "vhost-user reply {} {:?}",
                        m.request(),
                        &m.payload[..m.payload.len().min(8)]
                    );
                    let q = to_qemu.lock().unwrap_or_else(|e| e.into_inner());
                    if send_msg(&q, &m).is_err() {
                        break;
                    }
                }
                let _ = qb.shutdown(std::net::Shutdown::Both);
                let _ = bb.shutdown(std::net::Shutdown::Both);
            })?;
        Ok(Relay {
            threads: vec![t1, t2],
            qemu,
            backend,
        })
    }

    /// Closes both sides and joins the relay threads.
    pub fn stop(mut self) {
        let _ = self.qemu.shutdown(std::net::Shutdown::Both);
        let _ = self.backend.shutdown(std::net::Shutdown::Both);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(req: u32, flags: u32, payload: Vec<u8>, fds: Vec<OwnedFd>) -> Msg {
        let mut hdr = [0u8; HDR];
        hdr[0..4].copy_from_slice(&req.to_le_bytes());
        hdr[4..8].copy_from_slice(&(FLAG_VERSION | flags).to_le_bytes());
        hdr[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        Msg { hdr, payload, fds }
    }

    fn region(gpa: u64, size: u64, uaddr: u64) -> Vec<u8> {
        let mut p = vec![0u8; MEM_REG_PAYLOAD];
        p[8..16].copy_from_slice(&gpa.to_le_bytes());
        p[16..24].copy_from_slice(&size.to_le_bytes());
        p[24..32].copy_from_slice(&uaddr.to_le_bytes());
        p
    }

    fn memfd() -> OwnedFd {
        let f = tempfile::tempfile().unwrap();
        OwnedFd::from(f)
    }

    /// No message waiting on `s` for a short while.
    fn quiet(s: &UnixStream) -> bool {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let r = recv_msg(s).is_err();
        s.set_read_timeout(None).unwrap();
        r
    }

    #[test]
    fn repeated_regions_of_a_second_queue_pair_are_answered_by_the_relay() {
        let (qemu, relay_q) = UnixStream::pair().unwrap();
        let (relay_b, backend) = UnixStream::pair().unwrap();
        let relay = Relay::start(relay_q, relay_b).unwrap();
        let r0 = region(0, 1 << 20, 0x7f00_0000_0000);
        let r1 = region(1 << 32, 1 << 20, 0x7f10_0000_0000);

        // Queue pair 0 adds both regions: forwarded, with their fds.
        for r in [&r0, &r1] {
            send_msg(
                &qemu,
                &request(REQ_ADD_MEM_REG, 0, r.clone(), vec![memfd()]),
            )
            .unwrap();
            let got = recv_msg(&backend).unwrap();
            assert_eq!(got.request(), REQ_ADD_MEM_REG);
            assert_eq!(&got.payload, r);
            assert_eq!(got.fds.len(), 1);
        }
        // Queue pair 1 adds the same regions: answered here (ack asked for), not forwarded.
        for r in [&r0, &r1] {
            let m = request(REQ_ADD_MEM_REG, FLAG_NEED_REPLY, r.clone(), vec![memfd()]);
            send_msg(&qemu, &m).unwrap();
            let ack = recv_msg(&qemu).unwrap();
            assert_eq!(ack.request(), REQ_ADD_MEM_REG);
            assert_eq!(ack.flags(), FLAG_VERSION | FLAG_REPLY);
            assert_eq!(ack.payload, vec![0u8; 8]);
        }
        assert!(quiet(&backend), "a repeated region reached the back end");

        // A region at the same guest address but another user address is not the same
        // region: the back end decides (and refuses it).
        let clash = region(0, 1 << 20, 0x7f20_0000_0000);
        send_msg(&qemu, &request(REQ_ADD_MEM_REG, 0, clash, vec![memfd()])).unwrap();
        assert_eq!(recv_msg(&backend).unwrap().request(), REQ_ADD_MEM_REG);

        // Removal: the first of two holders is answered here, the last is forwarded.
        send_msg(
            &qemu,
            &request(REQ_REM_MEM_REG, FLAG_NEED_REPLY, r0.clone(), vec![]),
        )
        .unwrap();
        assert_eq!(recv_msg(&qemu).unwrap().flags(), FLAG_VERSION | FLAG_REPLY);
        assert!(quiet(&backend));
        send_msg(&qemu, &request(REQ_REM_MEM_REG, 0, r0.clone(), vec![])).unwrap();
        let got = recv_msg(&backend).unwrap();
        assert_eq!((got.request(), &got.payload), (REQ_REM_MEM_REG, &r0));

        // After SET_MEM_TABLE the count starts again: the next ADD of r1 is forwarded.
        send_msg(&qemu, &request(REQ_SET_MEM_TABLE, 0, vec![0u8; 8], vec![])).unwrap();
        assert_eq!(recv_msg(&backend).unwrap().request(), REQ_SET_MEM_TABLE);
        send_msg(
            &qemu,
            &request(REQ_ADD_MEM_REG, 0, r1.clone(), vec![memfd()]),
        )
        .unwrap();
        assert_eq!(recv_msg(&backend).unwrap().request(), REQ_ADD_MEM_REG);
        relay.stop();
    }

    #[test]
    fn region_counts_ignore_short_payloads() {
        let mut c = RegionCounts::default();
        assert_eq!(
            c.on_request(REQ_ADD_MEM_REG, &[0u8; 8]),
            RegionAction::Forward
        );
        assert_eq!(
            c.on_request(REQ_ADD_MEM_REG, &[0u8; 8]),
            RegionAction::Forward
        );
        assert_eq!(
            c.on_request(REQ_REM_MEM_REG, &[0u8; 8]),
            RegionAction::Forward
        );
    }
}
