//! Pure builders of the rtnetlink requests tupper sends, as bytes.
//!
//! Each builder mirrors one `ip` command (named in its doc) and returns one
//! complete netlink message with sequence number 0; [`super::nl::Netlink`]
//! numbers it when it is sent. The messages are built with
//! netlink-packet-route's types; the golden tests below pin every byte
//! against the kernel's layout (`struct nlmsghdr`, `struct ifinfomsg`,
//! `struct ifaddrmsg`, `struct rtmsg`, `struct rtattr`).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use netlink_packet_core::{
    DefaultNla, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoBridge, InfoData, InfoKind, InfoVeth,
    LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage, LinkProtoInfoBridge,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// Flags of a request that changes something and wants its ACK.
const CHANGE: u16 = NLM_F_REQUEST | NLM_F_ACK;
/// Flags of a request that creates an object that must not exist yet.
const CREATE: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

/// Serializes one rtnetlink message with the given `nlmsg_flags`.
fn finish(msg: RouteNetlinkMessage, flags: u16) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

/// A link message whose `ifi_flags`/`ifi_change` bring the link up.
fn link_up(index: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    m
}

/// `ip link show dev NAME` (one link, without statistics): `RTM_GETLINK` by name.
pub(crate) fn get_link(name: &str) -> Vec<u8> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    finish(RouteNetlinkMessage::GetLink(m), CHANGE)
}

/// `ip link show master INDEX`: an `RTM_GETLINK` dump filtered by the kernel
/// to the ports of one bridge (`IFLA_MASTER`, `NETLINK_GET_STRICT_CHK`).
pub(crate) fn dump_links_of(master: u32) -> Vec<u8> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::Controller(master));
    m.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    finish(RouteNetlinkMessage::GetLink(m), NLM_F_REQUEST | NLM_F_DUMP)
}

/// `ip -4 addr show dev INDEX`: an `RTM_GETADDR` dump of IPv4 addresses,
/// filtered by the kernel to the interface (`NETLINK_GET_STRICT_CHK`).
pub(crate) fn get_addresses(index: u32) -> Vec<u8> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.index = index;
    finish(
        RouteNetlinkMessage::GetAddress(m),
        NLM_F_REQUEST | NLM_F_DUMP,
    )
}

/// `ip link add NAME address MAC up type bridge mcast_snooping 0`:
/// `RTM_NEWLINK` kind `bridge`, created up, with its own MAC address and
/// without multicast snooping.
///
/// A bridge without an address of its own (`IFLA_ADDRESS`) borrows the
/// lowest of its ports' addresses, and changes it whenever a lower port
/// comes or that port goes: the containers' ARP caches then hold a gateway
/// address that no port has any more, and their traffic to the gateway is
/// lost until each cache entry expires. With an address set, the kernel
/// also skips its walk of every port for the lowest one at each port change
/// (`br_stp_recalculate_bridge_id`).
///
/// With snooping on, every port that comes up or goes away re-arms the
/// multicast timers of every other port (`br_port_state_selection` ->
/// `br_multicast_enable_port`): a cost per start that grows with the
/// containers on the bridge. Without it the bridge floods multicast, as it
/// does anyway for groups nobody joined.
pub(crate) fn new_bridge(name: &str, mac: [u8; 6]) -> Vec<u8> {
    let mut m = link_up(0);
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Bridge),
        LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::MulticastSnooping(false)])),
    ]));
    finish(RouteNetlinkMessage::NewLink(m), CREATE)
}

/// `ip link set dev INDEX up`: `RTM_SETLINK` with `IFF_UP` in flags and change mask.
pub(crate) fn set_link_up(index: u32) -> Vec<u8> {
    finish(RouteNetlinkMessage::SetLink(link_up(index)), CHANGE)
}

/// `ip link set dev INDEX address MAC up`: `RTM_SETLINK` with `IFLA_ADDRESS`
/// and `IFF_UP` in flags and change mask. The kernel sets the address before
/// it changes the flags (`do_setlink`); a veth takes a new address while up.
pub(crate) fn set_link_address_up(index: u32, mac: [u8; 6]) -> Vec<u8> {
    let mut m = link_up(index);
    m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    finish(RouteNetlinkMessage::SetLink(m), CHANGE)
}

/// `IFLA_BRPORT_MODE` (`linux/if_link.h`): the port's hairpin mode.
const IFLA_BRPORT_MODE: u16 = 4;

/// `bridge link set dev INDEX hairpin on`: `RTM_SETLINK` of family
/// `AF_BRIDGE` with `IFLA_PROTINFO` (nested) / `IFLA_BRPORT_MODE` 1. The
/// bridge then sends a frame back out of the port it came in by: what a
/// container's connection to its own published port needs when the kernel
/// filters bridged traffic (`br_netfilter`: the DNAT turns the frame around
/// inside the bridge).
pub(crate) fn set_port_hairpin(index: u32) -> Vec<u8> {
    let mut m = LinkMessage::default();
    m.header.interface_family = AddressFamily::Bridge;
    m.header.index = index;
    m.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
        LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![1])),
    ]));
    finish(RouteNetlinkMessage::SetLink(m), CHANGE)
}

/// `ip link set dev INDEX addrgenmode none`: `RTM_SETLINK` with
/// `IFLA_AF_SPEC` / `AF_INET6` / `IFLA_INET6_ADDR_GEN_MODE` =
/// `IN6_ADDR_GEN_MODE_NONE`. Sent before the link gets its carrier, it keeps
/// the link from making an IPv6 link-local address, and so from sending the
/// duplicate address detection, router solicitation and MLD packets that a
/// bridge floods to every port.
pub(crate) fn set_no_ipv6_link_local(index: u32) -> Vec<u8> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes
        .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
        )]));
    finish(RouteNetlinkMessage::SetLink(m), CHANGE)
}

/// `ip link add HOST up master MASTER type veth peer name PEER netns NETNS`:
/// one `RTM_NEWLINK` that creates the pair with the host end up on the bridge
/// and the peer directly in the namespace behind `netns_fd` (`IFLA_NET_NS_FD`
/// in the peer's `VETH_INFO_PEER` message). The peer never exists in the
/// host's namespace, so its name cannot collide there. It is created down: the
/// kernel refuses to open a veth whose pair is not linked yet (`veth_open`:
/// `ENOTCONN`), so it is brought up afterwards from inside.
pub(crate) fn new_veth(
    host: &str,
    master: u32,
    peer: &str,
    peer_index: u32,
    netns_fd: RawFd,
) -> Vec<u8> {
    let mut p = LinkMessage::default();
    p.header.index = peer_index;
    p.attributes.push(LinkAttribute::IfName(peer.to_string()));
    p.attributes.push(LinkAttribute::NetNsFd(netns_fd));
    let mut m = link_up(0);
    m.attributes.push(LinkAttribute::IfName(host.to_string()));
    m.attributes.push(LinkAttribute::Controller(master));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
    ]));
    finish(RouteNetlinkMessage::NewLink(m), CREATE)
}

/// `ip addr add ADDR/PREFIX brd + dev INDEX`: `RTM_NEWADDR` with `IFA_LOCAL`,
/// `IFA_ADDRESS` and `IFA_BROADCAST`.
pub(crate) fn new_address(index: u32, addr: Ipv4Addr, prefix: u8, broadcast: Ipv4Addr) -> Vec<u8> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = prefix;
    m.header.scope = AddressScope::Universe;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
    m.attributes
        .push(AddressAttribute::Address(IpAddr::V4(addr)));
    m.attributes.push(AddressAttribute::Broadcast(broadcast));
    finish(RouteNetlinkMessage::NewAddress(m), CREATE)
}

/// `ip route add default via GATEWAY`: `RTM_NEWROUTE` in the main table,
/// protocol `boot` (as `ip` does), the device found by the kernel from the
/// gateway's connected route.
pub(crate) fn new_default_route(gateway: Ipv4Addr) -> Vec<u8> {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    finish(RouteNetlinkMessage::NewRoute(m), CREATE)
}

/// `ip link del NAME`: `RTM_DELLINK` by name (crash recovery only: on the hot
/// path a veth dies with its namespace).
pub(crate) fn del_link(name: &str) -> Vec<u8> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    finish(RouteNetlinkMessage::DelLink(m), CHANGE)
}

/// What a `RTM_NEWLINK` reply says about a link: index, whether it is up, its
/// `IFLA_INFO_KIND`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LinkFacts {
    pub index: u32,
    pub name: String,
    pub master: Option<u32>,
    pub up: bool,
    pub kind: Option<String>,
}

/// Parses the payload of a `RTM_NEWLINK` reply (after the `nlmsghdr`),
/// reading only the `ifinfomsg` and the attributes tupper needs: a bridge's
/// full reply is kilobytes of attributes that a complete parse would allocate
/// for on every container start.
pub(crate) fn parse_link(payload: &[u8]) -> Option<LinkFacts> {
    use linux_raw_sys::netlink as k;
    use netlink_packet_core::{NlaBuffer, NlasIterator, NLA_TYPE_MASK};
    const IFINFOMSG: usize = std::mem::size_of::<k::ifinfomsg>();
    let h = payload.get(..IFINFOMSG)?;
    let index = u32::from_ne_bytes([h[4], h[5], h[6], h[7]]);
    let flags = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
    let text = |v: &[u8]| {
        let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
        String::from_utf8_lossy(&v[..end]).into_owned()
    };
    let (mut kind, mut name, mut master) = (None, String::new(), None);
    for nla in NlasIterator::new(&payload[IFINFOMSG..]) {
        let nla: NlaBuffer<&[u8]> = nla.ok()?;
        let v = nla.value();
        match nla.kind() & NLA_TYPE_MASK {
            t if t == k::IFLA_IFNAME as u16 => name = text(v),
            t if t == k::IFLA_MASTER as u16 && v.len() >= 4 => {
                master = Some(u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
            }
            t if t == k::IFLA_LINKINFO as u16 => {
                for info in NlasIterator::new(v) {
                    let info: NlaBuffer<&[u8]> = info.ok()?;
                    if info.kind() & NLA_TYPE_MASK == k::IFLA_INFO_KIND as u16 {
                        kind = Some(text(info.value()));
                    }
                }
            }
            _ => {}
        }
    }
    Some(LinkFacts {
        index,
        name,
        master,
        up: flags & libc::IFF_UP as u32 != 0,
        kind,
    })
}

/// Parses the payload of a `RTM_NEWADDR` reply: interface index and the IPv4
/// address (`IFA_LOCAL`, else `IFA_ADDRESS`) with its prefix length.
pub(crate) fn parse_address(payload: &[u8]) -> Option<(u32, Ipv4Addr, u8)> {
    use netlink_packet_core::Parseable;
    let m = AddressMessage::parse(payload).ok()?;
    let mut found = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(IpAddr::V4(v)) => found = Some(*v),
            AddressAttribute::Address(IpAddr::V4(v)) if found.is_none() => found = Some(*v),
            _ => {}
        }
    }
    Some((m.header.index, found?, m.header.prefix_len))
}

#[cfg(test)]
mod tests {
    //! Golden bytes. Every expected array is written from the kernel's uapi
    //! layouts (x86_64, little endian):
    //! - `nlmsghdr`: u32 len, u16 type, u16 flags, u32 seq, u32 pid (16 bytes)
    //! - `ifinfomsg`: u8 family, u8 pad, u16 type, i32 index, u32 flags, u32 change (16)
    //! - `ifaddrmsg`: u8 family, u8 prefixlen, u8 flags, u8 scope, u32 index (8)
    //! - `rtmsg`: u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags (12)
    //! - `rtattr`: u16 len (header + value, unpadded), u16 type, value padded to 4.
    //!
    //! Constants: RTM_NEWLINK 16, RTM_DELLINK 17, RTM_GETLINK 18, RTM_SETLINK 19,
    //! RTM_NEWADDR 20, RTM_GETADDR 22, RTM_NEWROUTE 24 (all checked against
    //! linux-raw-sys below, except VETH_INFO_PEER of `linux/veth.h`); NLM_F_REQUEST 1, ACK 4,
    //! EXCL 0x200, CREATE 0x400, DUMP 0x300; IFLA_IFNAME 3, IFLA_MASTER 10,
    //! IFLA_LINKINFO 18, IFLA_NET_NS_FD 28, IFLA_EXT_MASK 29; IFLA_INFO_KIND 1,
    //! IFLA_INFO_DATA 2, VETH_INFO_PEER 1; IFA_ADDRESS 1, IFA_LOCAL 2,
    //! IFA_BROADCAST 4; RTA_GATEWAY 5; AF_INET 2; IFF_UP 1;
    //! RTEXT_FILTER_SKIP_STATS 8; RT_TABLE_MAIN 254, RTPROT_BOOT 3,
    //! RT_SCOPE_UNIVERSE 0, RTN_UNICAST 1.
    use super::*;
    use linux_raw_sys::netlink as k;
    use netlink_packet_core::NetlinkBuffer;

    /// The constants the comments above rely on, checked against linux-raw-sys.
    #[test]
    fn constants_match_the_kernel_headers() {
        assert_eq!(k::RTM_NEWLINK as u16, 16);
        assert_eq!(k::RTM_DELLINK as u16, 17);
        assert_eq!(k::RTM_GETLINK as u16, 18);
        assert_eq!(k::RTM_SETLINK as u16, 19);
        assert_eq!(k::RTM_NEWADDR as u16, 20);
        assert_eq!(k::RTM_GETADDR as u16, 22);
        assert_eq!(k::RTM_NEWROUTE as u16, 24);
        assert_eq!(k::IFLA_IFNAME as u16, 3);
        assert_eq!(k::IFLA_MASTER as u16, 10);
        assert_eq!(k::IFLA_LINKINFO as u16, 18);
        assert_eq!(k::IFLA_NET_NS_FD as u16, 28);
        assert_eq!(k::IFLA_EXT_MASK as u16, 29);
        assert_eq!(k::IFLA_INFO_KIND as u16, 1);
        assert_eq!(k::IFLA_INFO_DATA as u16, 2);
        assert_eq!(k::IFA_ADDRESS as u16, 1);
        assert_eq!(k::IFA_LOCAL as u16, 2);
        assert_eq!(k::IFA_BROADCAST as u16, 4);
        assert_eq!(k::rtattr_type_t::RTA_GATEWAY as u16, 5);
        assert_eq!(k::RTEXT_FILTER_SKIP_STATS, 8);
        assert_eq!(k::rt_class_t::RT_TABLE_MAIN as u8, 254);
        assert_eq!(k::RTPROT_BOOT, 3);
        assert_eq!(k::RTN_UNICAST as u8, 1);
        assert_eq!(std::mem::size_of::<k::ifinfomsg>(), 16);
        assert_eq!(std::mem::size_of::<k::ifaddrmsg>(), 8);
        assert_eq!(std::mem::size_of::<k::rtmsg>(), 12);
    }

    /// Parses `bytes` back as one rtnetlink message and checks its length.
    fn parse_back(bytes: &[u8]) -> RouteNetlinkMessage {
        let buf = NetlinkBuffer::new_checked(bytes).unwrap();
        assert_eq!(buf.length() as usize, bytes.len());
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
            .unwrap()
            .payload
        {
            NetlinkPayload::InnerMessage(m) => m,
            other => panic!("not an rtnetlink message: {other:?}"),
        }
    }

    #[test]
    fn golden_get_link() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 52, RTM_GETLINK, REQUEST|ACK, seq 0, pid 0
            52, 0, 0, 0,  18, 0,  5, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // ifinfomsg: all zero (lookup by name)
            0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // IFLA_IFNAME "tpt-br0\0" (4 + 8 = 12)
            12, 0, 3, 0,  b't', b'p', b't', b'-', b'b', b'r', b'0', 0,
            // IFLA_EXT_MASK u32 RTEXT_FILTER_SKIP_STATS
            8, 0, 29, 0,  8, 0, 0, 0,
        ];
        let got = get_link("tpt-br0");
        assert_eq!(got, want);
        match parse_back(&got) {
            RouteNetlinkMessage::GetLink(m) => {
                assert!(m
                    .attributes
                    .contains(&LinkAttribute::IfName("tpt-br0".into())))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn golden_dump_links_of() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 48, RTM_GETLINK, REQUEST|DUMP (0x301)
            48, 0, 0, 0,  18, 0,  0x01, 0x03,  0, 0, 0, 0,  0, 0, 0, 0,
            // ifinfomsg: all zero
            0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // IFLA_MASTER u32 9: the kernel's dump filter
            8, 0, 10, 0,  9, 0, 0, 0,
            // IFLA_EXT_MASK u32 RTEXT_FILTER_SKIP_STATS
            8, 0, 29, 0,  8, 0, 0, 0,
        ];
        let got = dump_links_of(9);
        assert_eq!(got, want);
        assert!(
            matches!(parse_back(&got), RouteNetlinkMessage::GetLink(m) if m.attributes.contains(&LinkAttribute::Controller(9)))
        );
    }

    #[test]
    fn golden_get_addresses() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 24, RTM_GETADDR, REQUEST|DUMP (0x301)
            24, 0, 0, 0,  22, 0,  0x01, 0x03,  0, 0, 0, 0,  0, 0, 0, 0,
            // ifaddrmsg: AF_INET, prefixlen 0, flags 0, scope 0, index 7
            2, 0, 0, 0,  7, 0, 0, 0,
        ];
        let got = get_addresses(7);
        assert_eq!(got, want);
        assert!(
            matches!(parse_back(&got), RouteNetlinkMessage::GetAddress(m) if m.header.index == 7)
        );
    }

    const MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 1];

    #[test]
    fn golden_new_bridge() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 84, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE (0x605)
            84, 0, 0, 0,  16, 0,  0x05, 0x06,  0, 0, 0, 0,  0, 0, 0, 0,
            // ifinfomsg: family 0, type 0, index 0, flags IFF_UP, change IFF_UP
            0, 0, 0, 0,  0, 0, 0, 0,  1, 0, 0, 0,  1, 0, 0, 0,
            // IFLA_IFNAME "tpt-br0\0"
            12, 0, 3, 0,  b't', b'p', b't', b'-', b'b', b'r', b'0', 0,
            // IFLA_ADDRESS (1) 02:5e:00:00:00:01 (4 + 6 = 10, padded to 12)
            10, 0, 1, 0,  0x02, 0x5e, 0, 0, 0, 1,  0, 0,
            // IFLA_LINKINFO (4 + 12 + 12 = 28)
            28, 0, 18, 0,
            //   IFLA_INFO_KIND "bridge\0" (4 + 7 = 11, padded to 12)
            11, 0, 1, 0,  b'b', b'r', b'i', b'd', b'g', b'e', 0, 0,
            //   IFLA_INFO_DATA (4 + 8)
            12, 0, 2, 0,
            //     IFLA_BR_MCAST_SNOOPING (23), u8 0 (4 + 1, padded to 8)
            5, 0, 23, 0,  0, 0, 0, 0,
        ];
        assert_eq!(linux_raw_sys::netlink::IFLA_INFO_DATA as u16, 2);
        assert_eq!(linux_raw_sys::netlink::IFLA_BR_MCAST_SNOOPING as u16, 23);
        let got = new_bridge("tpt-br0", MAC);
        assert_eq!(got, want);
        match parse_back(&got) {
            RouteNetlinkMessage::NewLink(m) => {
                assert!(m.attributes.contains(&LinkAttribute::Address(MAC.to_vec())));
                assert!(m.attributes.contains(&LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Bridge),
                    LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::MulticastSnooping(false)])),
                ])))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn golden_set_link_up() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 32, RTM_SETLINK, REQUEST|ACK
            32, 0, 0, 0,  19, 0,  5, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // ifinfomsg: index 1 (lo), flags IFF_UP, change IFF_UP
            0, 0, 0, 0,  1, 0, 0, 0,  1, 0, 0, 0,  1, 0, 0, 0,
        ];
        let got = set_link_up(1);
        assert_eq!(got, want);
        assert!(matches!(parse_back(&got), RouteNetlinkMessage::SetLink(m) if m.header.index == 1));
    }

    #[test]
    fn golden_set_link_address_up() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 44, RTM_SETLINK, REQUEST|ACK
            44, 0, 0, 0,  19, 0,  5, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // ifinfomsg: index 2, flags IFF_UP, change IFF_UP
            0, 0, 0, 0,  2, 0, 0, 0,  1, 0, 0, 0,  1, 0, 0, 0,
            // IFLA_ADDRESS (1) 02:42:0a:59:00:02 (4 + 6 = 10, padded to 12)
            10, 0, 1, 0,  0x02, 0x42, 10, 89, 0, 2,  0, 0,
        ];
        let mac = [0x02, 0x42, 10, 89, 0, 2];
        let got = set_link_address_up(2, mac);
        assert_eq!(got, want);
        match parse_back(&got) {
            RouteNetlinkMessage::SetLink(m) => {
                assert_eq!(m.header.index, 2);
                assert_eq!(m.attributes, vec![LinkAttribute::Address(mac.to_vec())]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn golden_set_port_hairpin() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 44, RTM_SETLINK, REQUEST|ACK
            44, 0, 0, 0,  19, 0,  5, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // ifinfomsg: family AF_BRIDGE (7), index 9, no flags
            7, 0, 0, 0,  9, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // IFLA_PROTINFO (12 | NLA_F_NESTED), 4 + 8
            12, 0, 12, 0x80,
            //   IFLA_BRPORT_MODE (4), u8 1 (4 + 1, padded to 8)
            5, 0, 4, 0,  1, 0, 0, 0,
        ];
        assert_eq!(linux_raw_sys::netlink::IFLA_PROTINFO as u16, 12);
        assert_eq!(
            linux_raw_sys::netlink::IFLA_BRPORT_MODE as u16,
            IFLA_BRPORT_MODE
        );
        assert_eq!(set_port_hairpin(9), want);
    }

    #[test]
    fn golden_new_veth() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 120, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            120, 0, 0, 0,  16, 0,  0x05, 0x06,  0, 0, 0, 0,  0, 0, 0, 0,
            // ifinfomsg: index 0, flags IFF_UP, change IFF_UP (host end created up)
            0, 0, 0, 0,  0, 0, 0, 0,  1, 0, 0, 0,  1, 0, 0, 0,
            // IFLA_IFNAME "tp0123456789ab\0" (4 + 15 = 19, padded to 20)
            19, 0, 3, 0,  b't', b'p', b'0', b'1', b'2', b'3', b'4', b'5',
            b'6', b'7', b'8', b'9', b'a', b'b', 0, 0,
            // IFLA_MASTER u32 9 (the bridge's index)
            8, 0, 10, 0,  9, 0, 0, 0,
            // IFLA_LINKINFO (4 + 12 + 44 = 60)
            60, 0, 18, 0,
            //   IFLA_INFO_KIND "veth\0" (4 + 5 = 9, padded to 12)
            9, 0, 1, 0,  b'v', b'e', b't', b'h', 0, 0, 0, 0,
            //   IFLA_INFO_DATA (4 + 40 = 44)
            44, 0, 2, 0,
            //     VETH_INFO_PEER: ifinfomsg + attributes (4 + 16 + 12 + 8 = 40)
            40, 0, 1, 0,
            //       ifinfomsg of the peer: index 2 asked for, created down
            0, 0, 0, 0,  2, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            //       IFLA_IFNAME "eth0\0" (4 + 5 = 9, padded to 12)
            9, 0, 3, 0,  b'e', b't', b'h', b'0', 0, 0, 0, 0,
            //       IFLA_NET_NS_FD u32 5
            8, 0, 28, 0,  5, 0, 0, 0,
        ];
        let got = new_veth("tp0123456789ab", 9, "eth0", 2, 5);
        assert_eq!(got, want);
        match parse_back(&got) {
            RouteNetlinkMessage::NewLink(m) => {
                assert!(m.attributes.contains(&LinkAttribute::Controller(9)));
                assert!(m
                    .attributes
                    .contains(&LinkAttribute::IfName("tp0123456789ab".into())));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn golden_new_address() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 48, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE
            48, 0, 0, 0,  20, 0,  0x05, 0x06,  0, 0, 0, 0,  0, 0, 0, 0,
            // ifaddrmsg: AF_INET, /16, flags 0, RT_SCOPE_UNIVERSE, index 3
            2, 16, 0, 0,  3, 0, 0, 0,
            // IFA_LOCAL 10.89.0.2
            8, 0, 2, 0,  10, 89, 0, 2,
            // IFA_ADDRESS 10.89.0.2
            8, 0, 1, 0,  10, 89, 0, 2,
            // IFA_BROADCAST 10.89.255.255
            8, 0, 4, 0,  10, 89, 255, 255,
        ];
        let got = new_address(
            3,
            Ipv4Addr::new(10, 89, 0, 2),
            16,
            Ipv4Addr::new(10, 89, 255, 255),
        );
        assert_eq!(got, want);
        assert!(
            matches!(parse_back(&got), RouteNetlinkMessage::NewAddress(m) if m.header.prefix_len == 16)
        );
        // The reply parser reads what the builder wrote.
        assert_eq!(
            parse_address(&got[16..]),
            Some((3, Ipv4Addr::new(10, 89, 0, 2), 16))
        );
    }

    #[test]
    fn golden_new_default_route() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 36, RTM_NEWROUTE, REQUEST|ACK|EXCL|CREATE
            36, 0, 0, 0,  24, 0,  0x05, 0x06,  0, 0, 0, 0,  0, 0, 0, 0,
            // rtmsg: AF_INET, dst_len 0, src_len 0, tos 0, RT_TABLE_MAIN,
            //        RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST; flags 0
            2, 0, 0, 0,  254, 3, 0, 1,  0, 0, 0, 0,
            // RTA_GATEWAY 10.89.0.1
            8, 0, 5, 0,  10, 89, 0, 1,
        ];
        let got = new_default_route(Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(got, want);
        assert!(
            matches!(parse_back(&got), RouteNetlinkMessage::NewRoute(m) if m.header.table == 254)
        );
    }

    #[test]
    fn golden_del_link() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: len 52, RTM_DELLINK, REQUEST|ACK
            52, 0, 0, 0,  17, 0,  5, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // ifinfomsg: all zero (by name)
            0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // IFLA_IFNAME "tp0123456789ab\0"
            19, 0, 3, 0,  b't', b'p', b'0', b'1', b'2', b'3', b'4', b'5',
            b'6', b'7', b'8', b'9', b'a', b'b', 0, 0,
        ];
        let got = del_link("tp0123456789ab");
        assert_eq!(got, want);
        assert!(matches!(parse_back(&got), RouteNetlinkMessage::DelLink(_)));
    }

    #[test]
    fn the_light_link_parser_agrees_with_netlink_packet_route() {
        use netlink_packet_core::Parseable;
        let bytes = new_veth("tp0123456789ab", 9, "eth0", 2, 5);
        let full = LinkMessage::parse(&bytes[16..]).unwrap();
        let light = parse_link(&bytes[16..]).unwrap();
        assert_eq!(light.index, full.header.index);
        assert_eq!(light.up, full.header.flags.contains(LinkFlags::Up));
        assert_eq!(light.name, "tp0123456789ab");
        assert_eq!(light.master, Some(9));
        assert_eq!(light.kind.as_deref(), Some("veth"));
        assert_eq!(parse_link(&bytes[16..30]), None, "short ifinfomsg");
    }

    #[test]
    fn parses_a_link_reply() {
        // A bridge creation request has the shape of a RTM_NEWLINK reply.
        let bytes = new_bridge("tpt-br0", MAC);
        assert_eq!(
            parse_link(&bytes[16..]),
            Some(LinkFacts {
                index: 0,
                name: "tpt-br0".into(),
                master: None,
                up: true,
                kind: Some("bridge".into())
            })
        );
    }
}
