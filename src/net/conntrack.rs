//! Connection tracking over ctnetlink (`NETLINK_NETFILTER`, subsystem
//! `NFNL_SUBSYS_CTNETLINK`): forgetting the UDP flows to a host port that a
//! container is about to publish.
//!
//! NAT rules see the first packet of a flow only; the rest follow its
//! conntrack entry. A UDP flow to host port P that began before a container
//! published P (the host answered "port unreachable", or an earlier
//! container had P) keeps its entry, and its translation, for as long as
//! its packets keep coming (the entry expires 30 s after the last one): the
//! new container would never see them. docker deletes those entries when it
//! publishes a UDP port (moby#8795); so does tupper, right after its DNAT
//! rules are in place, by the same rule: every IPv4 UDP entry whose original
//! destination port is P.
//!
//! The entries are listed with one dump (`IPCTNL_MSG_CT_GET`, `NLM_F_DUMP`)
//! and deleted one by one by their original tuple (`IPCTNL_MSG_CT_DELETE`),
//! as the kernel sent it, with their zone.

use netlink_packet_core::{
    NlaBuffer, NlasIterator, NLA_F_NESTED, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};

use super::nft::Writer;
use super::nl::Netlink;
use crate::error::Result;

/// `NFNL_SUBSYS_CTNETLINK` (`linux/netfilter/nfnetlink.h`).
const NFNL_SUBSYS_CTNETLINK: u16 = libc::NFNL_SUBSYS_CTNETLINK as u16;
// enum cntl_msg_types (`linux/netfilter/nfnetlink_conntrack.h`)
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
// enum ctattr_type
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_ZONE: u16 = 18;
// enum ctattr_tuple
const CTA_TUPLE_PROTO: u16 = 2;
// enum ctattr_l4proto
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
/// `IPPROTO_UDP`.
const UDP: u8 = libc::IPPROTO_UDP as u8;
/// Attribute type bits (without `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// A conntrack message of family `AF_INET` (version 0, resource id 0), its
/// attributes written by `attrs`.
fn message(kind: u16, flags: u16, attrs: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new();
    let start = w.begin(
        (NFNL_SUBSYS_CTNETLINK << 8) | kind,
        flags,
        libc::AF_INET as u8,
        0,
    );
    attrs(&mut w);
    w.end(start);
    w.finish()
}

/// `conntrack -L -f ipv4`: a dump of every IPv4 entry.
fn dump_request() -> Vec<u8> {
    message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, |_| {})
}

/// An entry to delete: its original tuple (the nested attribute's value, as
/// the kernel sent it) and its zone (`CTA_ZONE`'s value), if it has one.
#[derive(Debug, PartialEq)]
struct Entry {
    tuple: Vec<u8>,
    zone: Option<Vec<u8>>,
}

/// `conntrack -D` of `entry`: `IPCTNL_MSG_CT_DELETE` with `CTA_TUPLE_ORIG`
/// (and `CTA_ZONE`).
fn delete_request(entry: &Entry) -> Vec<u8> {
    message(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, |w| {
        w.put(CTA_TUPLE_ORIG | NLA_F_NESTED, &entry.tuple);
        if let Some(zone) = &entry.zone {
            w.put(CTA_ZONE, zone);
        }
    })
}

/// The attributes of a nested attribute value (or of a message body),
/// with their type bits only.
fn attributes(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    NlasIterator::new(b)
        .map_while(|a| a.ok())
        .map(|a: NlaBuffer<&[u8]>| {
            let kind = a.kind() & NLA_TYPE_MASK;
            let len = a.length() as usize;
            let b = a.into_inner();
            (kind, b.get(4..len).unwrap_or_default())
        })
}

/// The entry of a dump reply (`payload`: after the `nlmsghdr`) when it is a
/// UDP flow whose original destination port is one of `ports`.
fn udp_flow_to(payload: &[u8], ports: &[u16]) -> Option<Entry> {
    let body = payload.get(4..)?; // nfgenmsg
    let tuple = attributes(body).find(|(k, _)| *k == CTA_TUPLE_ORIG)?.1;
    let proto = attributes(tuple).find(|(k, _)| *k == CTA_TUPLE_PROTO)?.1;
    let mut num = None;
    let mut dport = None;
    for (k, v) in attributes(proto) {
        match k {
            CTA_PROTO_NUM => num = v.first().copied(),
            CTA_PROTO_DST_PORT if v.len() == 2 => dport = Some(u16::from_be_bytes([v[0], v[1]])),
            _ => {}
        }
    }
    if num != Some(UDP) || !ports.contains(&dport?) {
        return None;
    }
    let zone = attributes(body)
        .find(|(k, _)| *k == CTA_ZONE)
        .map(|(_, v)| v.to_vec());
    Some(Entry {
        tuple: tuple.to_vec(),
        zone,
    })
}

/// Deletes the conntrack entries of the IPv4 UDP flows to the host ports
/// `ports`, in the calling thread's network namespace; returns how many.
/// A kernel without ctnetlink has nothing to delete this way.
pub(crate) fn forget_udp_flows_to(ports: &[u16]) -> Result<usize> {
    if ports.is_empty() {
        return Ok(0);
    }
    let what = || {
        format!(
            "forget the UDP flows to host port{} {} (conntrack)",
            if ports.len() == 1 { "" } else { "s" },
            ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let nf = Netlink::netfilter()?;
    let mut entries = Vec::new();
    let listed = nf.exchange(&mut dump_request(), &what, &mut |kind, payload| {
        if kind == (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW {
            entries.extend(udp_flow_to(payload, ports));
        }
    });
    match listed {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EPROTONOSUPPORT)
            ) =>
        {
            return Ok(0)
        }
        r => r?,
    }
    let mut deleted = 0;
    for entry in &entries {
        match nf.request(&mut delete_request(entry), &what) {
            Ok(()) => deleted += 1,
            // Gone meanwhile (expired, or another tupper's).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One attribute, header and value, padded to 4 bytes.
    fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.put(kind, value);
        w.finish()
    }

    /// A dump reply's payload: nfgenmsg, an original tuple (IP, then proto
    /// with `proto`, ports 40000 -> `dport`), a reply tuple, a zone.
    fn reply(proto: u8, dport: u16, zone: bool) -> (Vec<u8>, Vec<u8>) {
        let mut ip = attribute(1, &[192, 0, 2, 2]); // CTA_IP_V4_SRC
        ip.extend(attribute(2, &[192, 0, 2, 1])); // CTA_IP_V4_DST
        let mut l4 = attribute(CTA_PROTO_NUM, &[proto]);
        l4.extend(attribute(2, &40000u16.to_be_bytes()));
        l4.extend(attribute(CTA_PROTO_DST_PORT, &dport.to_be_bytes()));
        let mut tuple = attribute(1 | NLA_F_NESTED, &ip); // CTA_TUPLE_IP
        tuple.extend(attribute(CTA_TUPLE_PROTO | NLA_F_NESTED, &l4));
        let mut p = vec![libc::AF_INET as u8, 0, 0, 0];
        p.extend(attribute(CTA_TUPLE_ORIG | NLA_F_NESTED, &tuple));
        p.extend(attribute(2 | NLA_F_NESTED, &tuple)); // CTA_TUPLE_REPLY
        p.extend(attribute(3, &8u32.to_be_bytes())); // CTA_STATUS
        if zone {
            p.extend(attribute(CTA_ZONE, &7u16.to_be_bytes()));
        }
        (p, tuple)
    }

    #[test]
    fn constants_match_the_system_headers() {
        let Ok(h) = std::fs::read_to_string("/usr/include/linux/netfilter/nfnetlink_conntrack.h")
        else {
            eprintln!("no nfnetlink_conntrack.h: skipped");
            return;
        };
        // The first members of each enum, in order (implicit values).
        let order = |start: &str, names: &[&str]| {
            let body = &h[h.find(start).unwrap()..];
            let body = &body[..body.find("};").unwrap()];
            let members: Vec<&str> = body
                .lines()
                .skip(1)
                .map(|l| l.trim().trim_end_matches(',').trim())
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(&members[..names.len()], names, "{start}");
        };
        order(
            "enum cntl_msg_types {",
            &[
                "IPCTNL_MSG_CT_NEW",
                "IPCTNL_MSG_CT_GET",
                "IPCTNL_MSG_CT_DELETE",
            ],
        );
        order("enum ctattr_type {", &["CTA_UNSPEC", "CTA_TUPLE_ORIG"]);
        order(
            "enum ctattr_tuple {",
            &["CTA_TUPLE_UNSPEC", "CTA_TUPLE_IP", "CTA_TUPLE_PROTO"],
        );
        order(
            "enum ctattr_l4proto {",
            &[
                "CTA_PROTO_UNSPEC",
                "CTA_PROTO_NUM",
                "CTA_PROTO_SRC_PORT",
                "CTA_PROTO_DST_PORT",
            ],
        );
        // CTA_ZONE comes after an alias (`CTA_NAT_SEQ_ADJ_ORIG =
        // CTA_SEQ_ADJ_ORIG`): counted by hand, checked against the kernel
        // by the root test below.
        assert_eq!(CTA_ZONE, 18);
        assert_eq!(NFNL_SUBSYS_CTNETLINK, 1);
    }

    #[test]
    fn golden_dump_and_delete() {
        #[rustfmt::skip]
        let dump: &[u8] = &[
            // nlmsghdr: len 20, type 0x0101 (CTNETLINK << 8 | CT_GET), REQUEST|DUMP
            20, 0, 0, 0,  0x01, 0x01,  0x01, 0x03,  0, 0, 0, 0,  0, 0, 0, 0,
            // nfgenmsg: AF_INET, v0, res_id 0
            2, 0, 0, 0,
        ];
        assert_eq!(dump_request(), dump);
        let entry = Entry {
            tuple: vec![0xaa; 8],
            zone: Some(vec![0, 7]),
        };
        #[rustfmt::skip]
        let del: &[u8] = &[
            // nlmsghdr: len 40, type 0x0102 (CT_DELETE), REQUEST|ACK
            40, 0, 0, 0,  0x02, 0x01,  0x05, 0x00,  0, 0, 0, 0,  0, 0, 0, 0,
            2, 0, 0, 0,
            // CTA_TUPLE_ORIG (1 | NLA_F_NESTED), 4 + 8
            12, 0, 1, 0x80,  0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
            // CTA_ZONE (18), be16 7 (4 + 2, padded to 8)
            6, 0, 18, 0,  0, 7, 0, 0,
        ];
        assert_eq!(delete_request(&entry), del);
    }

    #[test]
    fn only_udp_flows_to_the_ports_are_taken() {
        let (p, tuple) = reply(UDP, 5353, false);
        assert_eq!(
            udp_flow_to(&p, &[80, 5353]),
            Some(Entry { tuple, zone: None })
        );
        assert_eq!(udp_flow_to(&p, &[53]), None);
        assert_eq!(udp_flow_to(&reply(6, 5353, false).0, &[5353]), None, "tcp");
        let (p, tuple) = reply(UDP, 53, true);
        assert_eq!(
            udp_flow_to(&p, &[53]),
            Some(Entry {
                tuple,
                zone: Some(vec![0, 7])
            })
        );
        assert_eq!(udp_flow_to(&[2, 0], &[53]), None, "short");
        assert_eq!(udp_flow_to(&p[..12], &[53]), None, "cut");
    }
}
