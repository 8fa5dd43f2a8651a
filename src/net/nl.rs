//! One thin synchronous netlink socket: send a request, wait for its ACK.
//!
//! A request is the bytes of one or more netlink messages built by [`super::msg`]
//! or [`super::nft`]. [`Netlink::request`] numbers every message (sequence
//! numbers are per socket), sends them in one `send(2)`, and reads until every
//! message that asked for an ACK (`NLM_F_ACK`) has one, or until the kernel
//! reports an error. An `NLMSG_ERROR` becomes an [`Error`] that names the
//! request (`create veth tp3f2a... on tupper0: File exists (os error 17)`),
//! with the kernel's extended-ACK message as advice when it gave one.
//!
//! The socket lives in the network namespace of the thread that opened it,
//! for its whole life: that is how tupper talks to a container's namespace
//! (see `open_in_netns` in the parent module).

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use netlink_packet_core::{
    NlaBuffer, NlasIterator, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED,
    NLM_F_DUMP,
};
use netlink_sys::{protocols, Socket};
use rustix::net::{RecvFlags, SendFlags};

use crate::error::{Context, Error, Result};

/// Size of `struct nlmsghdr` (`include/uapi/linux/netlink.h`).
pub(crate) const NLMSG_HDRLEN: usize = std::mem::size_of::<linux_raw_sys::netlink::nlmsghdr>();
const _: () = assert!(NLMSG_HDRLEN == 16);

/// `NLMSGERR_ATTR_MSG`: the extended-ACK text attribute of an `NLMSG_ERROR`.
const NLMSGERR_ATTR_MSG: u16 = linux_raw_sys::netlink::nlmsgerr_attrs::NLMSGERR_ATTR_MSG as u16;

/// The receive buffer. A non-dump reply (one link) is far smaller; dumps are
/// cut by the kernel to the largest buffer the socket has been read with.
const RECV_BUF: usize = 16 * 1024;

/// A netlink socket of one protocol, bound to the network namespace it was
/// opened in.
pub(crate) struct Netlink {
    sock: Socket,
    seq: Cell<u32>,
}

impl Netlink {
    /// A `NETLINK_ROUTE` socket (links, addresses, routes).
    pub(crate) fn route() -> Result<Netlink> {
        Netlink::open(protocols::NETLINK_ROUTE, "route")
    }

    /// A `NETLINK_NETFILTER` socket (nftables).
    pub(crate) fn netfilter() -> Result<Netlink> {
        Netlink::open(protocols::NETLINK_NETFILTER, "netfilter")
    }

    fn open(protocol: isize, name: &str) -> Result<Netlink> {
        // SOCK_CLOEXEC is set by netlink-sys.
        let sock = Socket::new(protocol).context(|| format!("open netlink {name} socket"))?;
        // Extended ACKs carry the kernel's own explanation; capped ACKs do not
        // echo the whole request back. Both are best effort (old kernels).
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        if protocol == protocols::NETLINK_ROUTE {
            // Lets the kernel filter address dumps by interface index.
            let _ = sock.set_netlink_get_strict_chk(true);
        }
        Ok(Netlink {
            sock,
            seq: Cell::new(1),
        })
    }

    /// The socket, for ioctls that are resolved in its network namespace
    /// (`SIOCGIFINDEX`).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The index of the interface `name` in this socket's network namespace,
    /// or `None` when there is no such interface.
    pub(crate) fn index_of(&self, name: &str) -> Result<Option<u32>> {
        match rustix::net::netdevice::name_to_index(self.fd(), name) {
            Ok(index) => Ok(Some(index)),
            Err(rustix::io::Errno::NODEV) => Ok(None),
            Err(e) => Err(Error::os(format!("look up interface {name}"), e)),
        }
    }

    /// Sends `msgs` (one or more messages) and waits until each one that asked
    /// for an ACK is acknowledged. `what` names the request in errors.
    pub(crate) fn request(&self, msgs: &mut [u8], what: &dyn Fn() -> String) -> Result<()> {
        self.exchange(msgs, what, &mut |_, _| {})
    }

    /// Like [`Netlink::request`], and hands every reply message (type and
    /// payload after the header) to `on_reply`: the answer to a `GET`, or the
    /// parts of a dump up to its `NLMSG_DONE`.
    pub(crate) fn exchange(
        &self,
        msgs: &mut [u8],
        what: &dyn Fn() -> String,
        on_reply: &mut dyn FnMut(u16, &[u8]),
    ) -> Result<()> {
        let first = self.seq.get();
        let mut pending = 0usize; // messages still waiting for their ACK or DONE
        let mut seq = first;
        let mut off = 0;
        while off < msgs.len() {
            let (len, flags) = header_len_flags(&msgs[off..]);
            msgs[off + 8..off + 12].copy_from_slice(&seq.to_ne_bytes());
            if flags & NLM_F_ACK != 0 || flags & NLM_F_DUMP == NLM_F_DUMP {
                pending += 1;
            }
            seq = seq.wrapping_add(1);
            off += align(len);
        }
        self.seq.set(seq);
        let last = seq.wrapping_sub(1);

        let sent = rustix::net::send(self.sock.as_fd(), msgs, SendFlags::empty())
            .context(|| format!("{}: send netlink request", what()))?;
        if sent != msgs.len() {
            return Err(Error::msg(format!("{}: short netlink send", what())));
        }

        let mut buf = [0u8; RECV_BUF];
        let mut error: Option<Error> = None;
        while pending > 0 {
            let (n, full) = rustix::net::recv(self.sock.as_fd(), &mut buf[..], RecvFlags::TRUNC)
                .context(|| format!("{}: receive netlink reply", what()))?;
            if full > n {
                return Err(Error::msg(format!(
                    "{}: netlink reply of {full} bytes does not fit in {n}",
                    what()
                )));
            }
            let mut off = 0;
            while off + NLMSG_HDRLEN <= n {
                let (len, flags) = header_len_flags(&buf[off..n]);
                if len < NLMSG_HDRLEN || off + len > n {
                    return Err(Error::msg(format!("{}: malformed netlink reply", what())));
                }
                let msg = &buf[off..off + len];
                off += align(len);
                let kind = u16::from_ne_bytes([msg[4], msg[5]]);
                let mseq = u32::from_ne_bytes([msg[8], msg[9], msg[10], msg[11]]);
                if mseq.wrapping_sub(first) > last.wrapping_sub(first) {
                    continue; // not ours (a late reply of an earlier request)
                }
                let payload = &msg[NLMSG_HDRLEN..];
                match kind {
                    NLMSG_ERROR => {
                        pending = pending.saturating_sub(1);
                        let code = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(-libc::EPROTO);
                        if code != 0 && error.is_none() {
                            let mut err = Error::os(what(), io::Error::from_raw_os_error(-code));
                            if let Some(text) = ext_ack_message(payload, flags) {
                                err = err.with_advice(format!("kernel: {text}"));
                            }
                            error = Some(err);
                            // In a batch, the kernel may answer only the
                            // message that failed: stop at the first error.
                            pending = 0;
                        }
                    }
                    NLMSG_DONE => {
                        pending = pending.saturating_sub(1);
                        let code = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(0);
                        if code < 0 && error.is_none() {
                            error = Some(Error::os(what(), io::Error::from_raw_os_error(-code)));
                        }
                    }
                    _ => on_reply(kind, payload),
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// `nlmsg_len` and `nlmsg_flags` of the message at the start of `b`.
fn header_len_flags(b: &[u8]) -> (usize, u16) {
    if b.len() < NLMSG_HDRLEN {
        return (b.len().max(NLMSG_HDRLEN), 0);
    }
    let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let flags = u16::from_ne_bytes([b[6], b[7]]);
    (len, flags)
}

/// `NLMSG_ALIGN`.
pub(crate) fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// The `NLMSGERR_ATTR_MSG` text of an `NLMSG_ERROR` payload, if the kernel
/// sent one. Layout: `int error`, then the request's `nlmsghdr` (only the
/// header when `NLM_F_CAPPED`, else the whole request), then the TLVs when
/// `NLM_F_ACK_TLVS`.
fn ext_ack_message(payload: &[u8], flags: u16) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || payload.len() < 4 + NLMSG_HDRLEN {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        header_len_flags(&payload[4..]).0
    };
    let tlvs = payload.get(4 + align(echoed)..)?;
    for nla in NlasIterator::new(tlvs) {
        let nla: NlaBuffer<&[u8]> = nla.ok()?;
        if nla.kind() == NLMSGERR_ATTR_MSG {
            let v = nla.value();
            let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
            return Some(String::from_utf8_lossy(&v[..end]).into_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_extended_ack_text() {
        // NLMSG_ERROR payload: error -17, capped request header (16 bytes),
        // then NLMSGERR_ATTR_MSG "bad\0".
        let mut p = Vec::new();
        p.extend_from_slice(&(-17i32).to_ne_bytes());
        p.extend_from_slice(&[16, 0, 0, 0, 16, 0, 5, 6, 1, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[8, 0, 1, 0, b'b', b'a', b'd', 0]);
        assert_eq!(
            ext_ack_message(&p, NLM_F_ACK_TLVS | NLM_F_CAPPED).as_deref(),
            Some("bad")
        );
        assert_eq!(ext_ack_message(&p, NLM_F_CAPPED), None);
    }

    #[test]
    fn unprivileged_kernel_error_names_the_request() {
        // A request the kernel refuses whatever our privileges: RTM_SETLINK of
        // an interface index that cannot exist.
        let nl = Netlink::route().unwrap();
        let mut msg = super::super::msg::set_link_up(0x7fff_fff0);
        let err = nl
            .request(&mut msg, &|| "set link 2147483632 up".to_string())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
        assert!(
            err.to_string()
                .starts_with("set link 2147483632 up: No such device"),
            "{err}"
        );
    }
}
