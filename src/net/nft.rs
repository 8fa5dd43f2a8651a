//! nftables over netfilter netlink: the table `ip tupper`, tupper's alone.
//!
//! - `masq-<bridge>`: a base chain (type nat, hook postrouting, priority 100,
//!   srcnat) per bridge with three rules:
//!   `ip saddr <subnet> oifname != "<bridge>" masquerade` (the containers'
//!   outbound traffic), `ip saddr 127.0.0.0/8 oifname "<bridge>" masquerade`
//!   (the host's own connections to a published port through a loopback
//!   address) and `ip saddr <subnet> oifname "<bridge>" masquerade` (a
//!   container's connection to a published port through a host address, sent
//!   back into the bridge).
//! - `guard-<bridge>`: a base chain (type filter, hook prerouting, priority
//!   -300, raw) per bridge with one rule, `iifname "<bridge>" ip daddr
//!   127.0.0.0/8 drop`: the bridge has `route_localnet` on for the rules
//!   above, and this keeps its containers from the host's loopback services.
//! - `isolate-<bridge>`: a base chain (type filter, hook forward, priority
//!   0, filter) per bridge that keeps the containers of user-defined
//!   networks (bridges `tn...`, [`crate::network`]) apart from those of
//!   other bridges, as docker's `DOCKER-ISOLATION` chains do: `ct status
//!   dnat accept` (a published port is reached from everywhere), then
//!   `oifname "<bridge>" iifname != "<bridge>" iifname "tn*" drop` and
//!   `iifname "<bridge>" oifname != "<bridge>" oifname "tn*" drop`. Every
//!   bridge has it, so between any two bridges one of which is a network's,
//!   forwarded traffic is dropped.
//!   The three chains are (re)installed by one atomic batch that creates the
//!   table and chains if missing, flushes them and adds the rules, so
//!   installing it twice leaves each rule once.
//! - `dnat-<container-id>` and `dnat-<container-id>-local`: base chains (type
//!   nat, priority -100, dstnat; hook prerouting for traffic that comes in,
//!   output for the host's own) per container that publishes ports, one rule
//!   per port: `fib daddr type local meta l4proto <p> <p> dport <host-port>
//!   dnat to <addr>:<port>`. Deleting the chains (`NFT_MSG_DELCHAIN`, which
//!   takes the rules along) removes the ports.
//!
//! No other table is read or written. Messages are built by hand on
//! netlink-packet-core: changes go in one `NFNL_MSG_BATCH_BEGIN` ...
//! `NFNL_MSG_BATCH_END` transaction, each message asking for its ACK.

use std::net::Ipv4Addr;

use netlink_packet_core::{
    Emitable, NetlinkHeader, NLA_F_NESTED, NLA_HEADER_SIZE, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_REQUEST,
};

use super::nl::{align, NLMSG_HDRLEN};
use super::{PortMapping, Subnet};

/// The table's name (family `ip`).
pub(crate) const TABLE: &str = "tupper";

/// Constants of `include/uapi/linux/netfilter/nf_tables.h` and
/// `nfnetlink.h` that neither linux-raw-sys nor libc provide. The test
/// `constants_match_the_system_headers` checks them against the system's
/// headers when they are installed.
#[allow(missing_docs)]
pub(crate) mod k {
    // enum nft_table_attributes
    pub const NFTA_TABLE_NAME: u16 = 1;
    pub const NFTA_TABLE_FLAGS: u16 = 2;
    // enum nft_chain_attributes
    pub const NFTA_CHAIN_TABLE: u16 = 1;
    pub const NFTA_CHAIN_NAME: u16 = 3;
    pub const NFTA_CHAIN_HOOK: u16 = 4;
    pub const NFTA_CHAIN_POLICY: u16 = 5;
    pub const NFTA_CHAIN_TYPE: u16 = 7;
    // enum nft_hook_attributes
    pub const NFTA_HOOK_HOOKNUM: u16 = 1;
    pub const NFTA_HOOK_PRIORITY: u16 = 2;
    // enum nft_rule_attributes
    pub const NFTA_RULE_TABLE: u16 = 1;
    pub const NFTA_RULE_CHAIN: u16 = 2;
    pub const NFTA_RULE_EXPRESSIONS: u16 = 4;
    // enum nft_list_attributes
    pub const NFTA_LIST_ELEM: u16 = 1;
    // enum nft_expr_attributes
    pub const NFTA_EXPR_NAME: u16 = 1;
    pub const NFTA_EXPR_DATA: u16 = 2;
    // enum nft_data_attributes
    pub const NFTA_DATA_VALUE: u16 = 1;
    pub const NFTA_DATA_VERDICT: u16 = 2;
    // enum nft_verdict_attributes
    pub const NFTA_VERDICT_CODE: u16 = 1;
    // enum nft_payload_attributes
    pub const NFTA_PAYLOAD_DREG: u16 = 1;
    pub const NFTA_PAYLOAD_BASE: u16 = 2;
    pub const NFTA_PAYLOAD_OFFSET: u16 = 3;
    pub const NFTA_PAYLOAD_LEN: u16 = 4;
    // enum nft_bitwise_attributes
    pub const NFTA_BITWISE_SREG: u16 = 1;
    pub const NFTA_BITWISE_DREG: u16 = 2;
    pub const NFTA_BITWISE_LEN: u16 = 3;
    pub const NFTA_BITWISE_MASK: u16 = 4;
    pub const NFTA_BITWISE_XOR: u16 = 5;
    // enum nft_cmp_attributes
    pub const NFTA_CMP_SREG: u16 = 1;
    pub const NFTA_CMP_OP: u16 = 2;
    pub const NFTA_CMP_DATA: u16 = 3;
    // enum nft_meta_attributes
    pub const NFTA_META_DREG: u16 = 1;
    pub const NFTA_META_KEY: u16 = 2;
    // enum nft_immediate_attributes
    pub const NFTA_IMMEDIATE_DREG: u16 = 1;
    pub const NFTA_IMMEDIATE_DATA: u16 = 2;
    // enum nft_nat_attributes
    pub const NFTA_NAT_TYPE: u16 = 1;
    pub const NFTA_NAT_FAMILY: u16 = 2;
    pub const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
    pub const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
    // enum nft_fib_attributes, nft_fib_result, nft_fib_flags
    pub const NFTA_FIB_DREG: u16 = 1;
    pub const NFTA_FIB_RESULT: u16 = 2;
    pub const NFTA_FIB_FLAGS: u16 = 3;
    pub const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
    pub const NFTA_FIB_F_DADDR: u32 = 1 << 1;
    // enum nft_ct_attributes
    pub const NFTA_CT_DREG: u16 = 1;
    pub const NFTA_CT_KEY: u16 = 2;
    // enum nft_payload_bases
    pub const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
    pub const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
}

// Constants that libc does provide (enum values of nf_tables.h, netfilter.h,
// nfnetlink.h, rtnetlink.h), narrowed once here.
const NFNL_SUBSYS_NFTABLES: u16 = libc::NFNL_SUBSYS_NFTABLES as u16;
const NFNL_MSG_BATCH_BEGIN: u16 = libc::NFNL_MSG_BATCH_BEGIN as u16;
const NFNL_MSG_BATCH_END: u16 = libc::NFNL_MSG_BATCH_END as u16;
const NFT_MSG_NEWTABLE: u16 = libc::NFT_MSG_NEWTABLE as u16;
const NFT_MSG_NEWCHAIN: u16 = libc::NFT_MSG_NEWCHAIN as u16;
const NFT_MSG_GETCHAIN: u16 = libc::NFT_MSG_GETCHAIN as u16;
const NFT_MSG_DELCHAIN: u16 = libc::NFT_MSG_DELCHAIN as u16;
const NFT_MSG_NEWRULE: u16 = libc::NFT_MSG_NEWRULE as u16;
const NFT_MSG_DELRULE: u16 = libc::NFT_MSG_DELRULE as u16;
const NFPROTO_IPV4: u8 = libc::NFPROTO_IPV4 as u8;
const NFT_REG_1: u32 = libc::NFT_REG_1 as u32;
const NFT_REG_2: u32 = libc::NFT_REG_2 as u32;
const NFT_CMP_EQ: u32 = libc::NFT_CMP_EQ as u32;
const NFT_CMP_NEQ: u32 = libc::NFT_CMP_NEQ as u32;
const NFT_META_IIFNAME: u32 = libc::NFT_META_IIFNAME as u32;
const NFT_META_OIFNAME: u32 = libc::NFT_META_OIFNAME as u32;
const NFT_META_L4PROTO: u32 = libc::NFT_META_L4PROTO as u32;
const NFT_NAT_DNAT: u32 = libc::NFT_NAT_DNAT as u32;
const NF_INET_PRE_ROUTING: u32 = libc::NF_INET_PRE_ROUTING as u32;
const NF_INET_LOCAL_OUT: u32 = libc::NF_INET_LOCAL_OUT as u32;
const NF_INET_POST_ROUTING: u32 = libc::NF_INET_POST_ROUTING as u32;
const NF_INET_FORWARD: u32 = libc::NF_INET_FORWARD as u32;
const NFT_REG_VERDICT: u32 = libc::NFT_REG_VERDICT as u32;
const NF_DROP: u32 = libc::NF_DROP as u32;
const NFT_CT_STATUS: u32 = libc::NFT_CT_STATUS as u32;
/// `IPS_DST_NAT` (`1 << IPS_DST_NAT_BIT`, `linux/netfilter/nf_conntrack_common.h`):
/// the connection's destination was rewritten (DNAT).
const IPS_DST_NAT: u32 = 1 << 5;
const NF_ACCEPT: u32 = libc::NF_ACCEPT as u32;
const RTN_LOCAL: u32 = libc::RTN_LOCAL as u32;
/// `NF_IP_PRI_RAW` (`linux/netfilter_ipv4.h`), nft's `raw`: before
/// connection tracking and NAT.
const PRIO_RAW: i32 = -300;
/// `NF_IP_PRI_FILTER`, nft's `filter`.
const PRIO_FILTER: i32 = 0;
/// `NF_IP_PRI_NAT_DST`, nft's `dstnat`.
const PRIO_DSTNAT: i32 = -100;
/// `NF_IP_PRI_NAT_SRC`, nft's `srcnat`.
const PRIO_SRCNAT: i32 = 100;
/// `IFNAMSIZ`: `meta iifname/oifname` load this many bytes.
const IFNAMSIZ: usize = 16;
/// Size of `struct nfgenmsg` (u8 family, u8 version, __be16 res_id).
const NFGENMSG_LEN: usize = 4;

/// The chain that masquerades `bridge`'s subnet.
pub(crate) fn masq_chain(bridge: &str) -> String {
    format!("masq-{bridge}")
}

/// The chain that keeps `bridge`'s containers from the host's loopback
/// addresses.
pub(crate) fn guard_chain(bridge: &str) -> String {
    format!("guard-{bridge}")
}

/// The chain that keeps `bridge`'s containers apart from those of
/// user-defined networks (and those apart from each other).
pub(crate) fn isolate_chain(bridge: &str) -> String {
    format!("isolate-{bridge}")
}

/// The chains of container `id`'s published ports: for traffic that comes
/// in (hook prerouting), and for the host's own (hook output).
pub(crate) fn dnat_chains(id: &str) -> [String; 2] {
    [format!("dnat-{id}"), format!("dnat-{id}-local")]
}

/// The container whose published ports chain `name` holds (one of
/// [`dnat_chains`]), if it is one.
pub(crate) fn dnat_chain_owner(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("dnat-")?;
    let id = rest.strip_suffix("-local").unwrap_or(rest);
    crate::names::is_id(id).then_some(id)
}

/// The loopback network, 127.0.0.0/8: network and mask.
const LOOPBACK: ([u8; 4], [u8; 4]) = ([127, 0, 0, 0], [255, 0, 0, 0]);

/// Writes netfilter netlink messages (`nlmsghdr`, `nfgenmsg`, attributes)
/// into one buffer; also used by [`super::conntrack`].
pub(super) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(super) fn new() -> Writer {
        Writer {
            buf: Vec::with_capacity(512),
        }
    }

    /// Starts a message: `nlmsghdr` (length patched by [`Writer::end`]) and
    /// `nfgenmsg`.
    pub(super) fn begin(&mut self, kind: u16, flags: u16, family: u8, res_id: u16) -> usize {
        let start = self.buf.len();
        let mut h = NetlinkHeader::default();
        h.message_type = kind;
        h.flags = flags;
        self.buf.resize(start + NLMSG_HDRLEN, 0);
        h.emit(&mut self.buf[start..]);
        self.buf.push(family);
        self.buf.push(0); // version: NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    /// Ends the message started at `start`: patches `nlmsg_len`.
    pub(super) fn end(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// One attribute, padded to 4 bytes.
    pub(super) fn put(&mut self, kind: u16, value: &[u8]) {
        let len = (NLA_HEADER_SIZE + value.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align(self.buf.len()), 0);
    }

    /// A 32-bit attribute in network byte order (all nftables numbers are).
    fn put_u32(&mut self, kind: u16, v: u32) {
        self.put(kind, &v.to_be_bytes());
    }

    /// A NUL-terminated string attribute.
    fn put_str(&mut self, kind: u16, s: &str) {
        let start = self.buf.len();
        let len = (NLA_HEADER_SIZE + s.len() + 1) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self.buf.resize(start + align(len as usize), 0);
    }

    /// Starts a nested attribute (`NLA_F_NESTED`, as libnftnl sends them).
    fn nest(&mut self, kind: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        start
    }

    fn end_nest(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// A nested `NFTA_DATA_VALUE` (the `struct nft_data` of cmp, bitwise,
    /// immediate).
    fn data(&mut self, kind: u16, value: &[u8]) {
        let n = self.nest(kind);
        self.put(k::NFTA_DATA_VALUE, value);
        self.end_nest(n);
    }

    /// One expression: `NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { .. } }`.
    fn expr(&mut self, name: &str, body: impl FnOnce(&mut Writer)) {
        let e = self.nest(k::NFTA_LIST_ELEM);
        self.put_str(k::NFTA_EXPR_NAME, name);
        let d = self.nest(k::NFTA_EXPR_DATA);
        body(self);
        self.end_nest(d);
        self.end_nest(e);
    }

    fn batch_begin(&mut self) {
        let s = self.begin(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
        self.end(s);
    }

    fn batch_end(&mut self) {
        let s = self.begin(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
        self.end(s);
    }

    /// Starts an nf_tables message of family `ip`.
    fn nft(&mut self, msg: u16, flags: u16) -> usize {
        self.begin((NFNL_SUBSYS_NFTABLES << 8) | msg, flags, NFPROTO_IPV4, 0)
    }

    /// `add table ip tupper` (no error if it exists).
    fn new_table(&mut self) {
        let s = self.nft(NFT_MSG_NEWTABLE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
        self.put_str(k::NFTA_TABLE_NAME, TABLE);
        self.put_u32(k::NFTA_TABLE_FLAGS, 0);
        self.end(s);
    }

    /// `add chain ip tupper NAME { type KIND hook HOOK priority PRIO; policy accept; }`.
    fn new_base_chain(&mut self, name: &str, kind: &str, hook: u32, priority: i32) {
        let s = self.nft(NFT_MSG_NEWCHAIN, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
        self.put_str(k::NFTA_CHAIN_TABLE, TABLE);
        self.put_str(k::NFTA_CHAIN_NAME, name);
        let h = self.nest(k::NFTA_CHAIN_HOOK);
        self.put_u32(k::NFTA_HOOK_HOOKNUM, hook);
        self.put_u32(k::NFTA_HOOK_PRIORITY, priority as u32);
        self.end_nest(h);
        self.put_u32(k::NFTA_CHAIN_POLICY, NF_ACCEPT);
        self.put_str(k::NFTA_CHAIN_TYPE, kind);
        self.end(s);
    }

    /// `flush chain ip tupper NAME` (`NFT_MSG_DELRULE` without a handle).
    fn flush_chain(&mut self, name: &str) {
        let s = self.nft(NFT_MSG_DELRULE, NLM_F_REQUEST | NLM_F_ACK);
        self.put_str(k::NFTA_RULE_TABLE, TABLE);
        self.put_str(k::NFTA_RULE_CHAIN, name);
        self.end(s);
    }

    /// `add rule ip tupper CHAIN <expressions>`.
    fn rule(&mut self, chain: &str, exprs: impl FnOnce(&mut Writer)) {
        let s = self.nft(
            NFT_MSG_NEWRULE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
        );
        self.put_str(k::NFTA_RULE_TABLE, TABLE);
        self.put_str(k::NFTA_RULE_CHAIN, chain);
        let l = self.nest(k::NFTA_RULE_EXPRESSIONS);
        exprs(self);
        self.end_nest(l);
        self.end(s);
    }

    /// `delete chain ip tupper NAME` (its rules go with it).
    fn del_chain(&mut self, name: &str) {
        let s = self.nft(NFT_MSG_DELCHAIN, NLM_F_REQUEST | NLM_F_ACK);
        self.put_str(k::NFTA_CHAIN_TABLE, TABLE);
        self.put_str(k::NFTA_CHAIN_NAME, name);
        self.end(s);
    }

    // Expressions (the `nft --debug=netlink` spelling in each comment).

    /// `[ payload load LEN b @ BASE header + OFFSET => reg 1 ]`
    fn payload(&mut self, base: u32, offset: u32, len: u32) {
        self.expr("payload", |w| {
            w.put_u32(k::NFTA_PAYLOAD_DREG, NFT_REG_1);
            w.put_u32(k::NFTA_PAYLOAD_BASE, base);
            w.put_u32(k::NFTA_PAYLOAD_OFFSET, offset);
            w.put_u32(k::NFTA_PAYLOAD_LEN, len);
        });
    }

    /// `[ bitwise reg 1 = ( reg 1 & MASK ) ^ 0 ]`
    fn mask(&mut self, mask: &[u8]) {
        self.expr("bitwise", |w| {
            w.put_u32(k::NFTA_BITWISE_SREG, NFT_REG_1);
            w.put_u32(k::NFTA_BITWISE_DREG, NFT_REG_1);
            w.put_u32(k::NFTA_BITWISE_LEN, mask.len() as u32);
            w.data(k::NFTA_BITWISE_MASK, mask);
            w.data(k::NFTA_BITWISE_XOR, &[0u8; 16][..mask.len()]);
        });
    }

    /// `[ cmp OP reg 1 VALUE ]`
    fn cmp(&mut self, op: u32, value: &[u8]) {
        self.expr("cmp", |w| {
            w.put_u32(k::NFTA_CMP_SREG, NFT_REG_1);
            w.put_u32(k::NFTA_CMP_OP, op);
            w.data(k::NFTA_CMP_DATA, value);
        });
    }

    /// `[ meta load KEY => reg 1 ]`
    fn meta(&mut self, key: u32) {
        self.expr("meta", |w| {
            w.put_u32(k::NFTA_META_DREG, NFT_REG_1);
            w.put_u32(k::NFTA_META_KEY, key);
        });
    }

    /// `[ immediate reg REG VALUE ]`
    fn immediate(&mut self, reg: u32, value: &[u8]) {
        self.expr("immediate", |w| {
            w.put_u32(k::NFTA_IMMEDIATE_DREG, reg);
            w.data(k::NFTA_IMMEDIATE_DATA, value);
        });
    }

    /// `[ immediate reg 0 VERDICT ]`: the rule's verdict (`drop`, ...).
    fn verdict(&mut self, code: u32) {
        self.expr("immediate", |w| {
            w.put_u32(k::NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
            let d = w.nest(k::NFTA_IMMEDIATE_DATA);
            let v = w.nest(k::NFTA_DATA_VERDICT);
            w.put_u32(k::NFTA_VERDICT_CODE, code);
            w.end_nest(v);
            w.end_nest(d);
        });
    }

    /// `ct status dnat`: `[ ct load status => reg 1 ]`, `[ bitwise reg 1 = (
    /// reg 1 & IPS_DST_NAT ) ^ 0 ]`, `[ cmp neq reg 1 0 ]` (the status is a
    /// host-order u32).
    fn ct_status_dnat(&mut self) {
        self.expr("ct", |w| {
            w.put_u32(k::NFTA_CT_DREG, NFT_REG_1);
            w.put_u32(k::NFTA_CT_KEY, NFT_CT_STATUS);
        });
        self.mask(&IPS_DST_NAT.to_ne_bytes());
        self.cmp(NFT_CMP_NEQ, &0u32.to_ne_bytes());
    }

    /// `ip saddr|daddr NETWORK/MASK`: the IPv4 header's source (offset 12)
    /// or destination (16) address, masked, compared.
    fn ip_addr_in(&mut self, offset: u32, network: &[u8; 4], mask: &[u8; 4]) {
        self.payload(k::NFT_PAYLOAD_NETWORK_HEADER, offset, 4);
        self.mask(mask);
        self.cmp(NFT_CMP_EQ, network);
    }

    pub(super) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// The IPv4 header's source address offset.
const SADDR: u32 = 12;
/// The IPv4 header's destination address offset.
const DADDR: u32 = 16;

/// An interface name as `meta iifname/oifname` loads it: IFNAMSIZ bytes,
/// NUL-padded.
fn ifname_bytes(name: &str) -> [u8; IFNAMSIZ] {
    let mut b = [0u8; IFNAMSIZ];
    let n = name.len().min(IFNAMSIZ - 1);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    b
}

/// Appends `[ct status dnat] ip saddr NETWORK/MASK oifname OP "BRIDGE"
/// masquerade` to chain `chain` (`op`: `NFT_CMP_EQ` or `NFT_CMP_NEQ`;
/// `dnat_only`: only connections to a published port).
fn masquerade_rule(
    w: &mut Writer,
    chain: &str,
    dnat_only: bool,
    (network, mask): ([u8; 4], [u8; 4]),
    op: u32,
    bridge: &str,
) {
    w.rule(chain, |w| {
        if dnat_only {
            w.ct_status_dnat();
        }
        w.ip_addr_in(SADDR, &network, &mask);
        w.meta(NFT_META_OIFNAME);
        w.cmp(op, &ifname_bytes(bridge));
        w.expr("masq", |_| {});
    });
}

/// Appends `iifname "BRIDGE" ip daddr 127.0.0.0/8 drop` to chain `chain`.
fn guard_rule(w: &mut Writer, chain: &str, bridge: &str) {
    w.rule(chain, |w| {
        w.meta(NFT_META_IIFNAME);
        w.cmp(NFT_CMP_EQ, &ifname_bytes(bridge));
        w.ip_addr_in(DADDR, &LOOPBACK.0, &LOOPBACK.1);
        w.verdict(NF_DROP);
    });
}

/// Appends the rules of `bridge`'s isolation chain `chain` (see the module
/// doc): `ct status dnat accept`, then a drop of what is forwarded into
/// the bridge from a network's bridge, and out of it into one. `"tn*"` is
/// a compare of the first two bytes of the name (as nft's wildcard).
fn isolate_rules(w: &mut Writer, chain: &str, bridge: &str, internal: bool) {
    let prefix = crate::network::BRIDGE_PREFIX.as_bytes();
    // An internal network (`network create --internal`): nothing is
    // forwarded into or out of its bridge, not even to a published port.
    if internal {
        for this in [NFT_META_IIFNAME, NFT_META_OIFNAME] {
            w.rule(chain, |w| {
                w.meta(this);
                w.cmp(NFT_CMP_EQ, &ifname_bytes(bridge));
                w.meta(NFT_META_IIFNAME + NFT_META_OIFNAME - this);
                w.cmp(NFT_CMP_NEQ, &ifname_bytes(bridge));
                w.verdict(NF_DROP);
            });
        }
    }
    w.rule(chain, |w| {
        w.ct_status_dnat();
        w.verdict(NF_ACCEPT);
    });
    for (this, other) in [
        (NFT_META_OIFNAME, NFT_META_IIFNAME),
        (NFT_META_IIFNAME, NFT_META_OIFNAME),
    ] {
        w.rule(chain, |w| {
            w.meta(this);
            w.cmp(NFT_CMP_EQ, &ifname_bytes(bridge));
            w.meta(other);
            w.cmp(NFT_CMP_NEQ, &ifname_bytes(bridge));
            w.meta(other);
            w.cmp(NFT_CMP_EQ, prefix);
            w.verdict(NF_DROP);
        });
    }
}

/// Appends the DNAT rule of one published port to chain `chain`.
fn dnat_rule(w: &mut Writer, chain: &str, addr: Ipv4Addr, p: &PortMapping) {
    w.rule(chain, |w| {
        match p.host_ip {
            // ip daddr ADDRESS: the one host address it is published on.
            Some(ip) => {
                w.payload(k::NFT_PAYLOAD_NETWORK_HEADER, DADDR, 4);
                w.cmp(NFT_CMP_EQ, &ip.octets());
            }
            // fib daddr type local: traffic for any of the host's addresses
            // (from outside, from the host itself, or from a container).
            None => {
                w.expr("fib", |w| {
                    w.put_u32(k::NFTA_FIB_DREG, NFT_REG_1);
                    w.put_u32(k::NFTA_FIB_RESULT, k::NFT_FIB_RESULT_ADDRTYPE);
                    w.put_u32(k::NFTA_FIB_FLAGS, k::NFTA_FIB_F_DADDR);
                });
                // The address type is a host-order u32 in the register.
                w.cmp(NFT_CMP_EQ, &RTN_LOCAL.to_ne_bytes());
            }
        }
        // meta l4proto tcp|udp
        w.meta(NFT_META_L4PROTO);
        w.cmp(NFT_CMP_EQ, &[p.protocol.number()]);
        // th dport HOST-PORT (transport header offset 2, 2 bytes)
        w.payload(k::NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
        w.cmp(NFT_CMP_EQ, &p.host_port.to_be_bytes());
        // dnat to ADDR:PORT
        w.immediate(NFT_REG_1, &addr.octets());
        w.immediate(NFT_REG_2, &p.container_port.to_be_bytes());
        w.expr("nat", |w| {
            w.put_u32(k::NFTA_NAT_TYPE, NFT_NAT_DNAT);
            w.put_u32(k::NFTA_NAT_FAMILY, NFPROTO_IPV4 as u32);
            w.put_u32(k::NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
            w.put_u32(k::NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
        });
    });
}

/// One batch that makes sure the table and the bridge's chains exist with
/// their rules: `masq-BRIDGE` (three masquerade rules), `guard-BRIDGE` and
/// `isolate-BRIDGE` (flush, then add: idempotent). The isolation chain is
/// made last: when it is there, so is the rest.
pub(crate) fn ensure_bridge_chains(bridge: &str, subnet: Subnet, internal: bool) -> Vec<u8> {
    let masq = masq_chain(bridge);
    let guard = guard_chain(bridge);
    let containers = (subnet.network().octets(), subnet.mask().octets());
    let mut w = Writer::new();
    w.batch_begin();
    w.new_table();
    w.new_base_chain(&masq, "nat", NF_INET_POST_ROUTING, PRIO_SRCNAT);
    w.flush_chain(&masq);
    masquerade_rule(&mut w, &masq, false, containers, NFT_CMP_NEQ, bridge);
    masquerade_rule(&mut w, &masq, false, LOOPBACK, NFT_CMP_EQ, bridge);
    // Only published ports: the containers' traffic to each other goes
    // through these hooks too when the kernel filters bridged traffic
    // (`br_netfilter`), and must keep its addresses.
    masquerade_rule(&mut w, &masq, true, containers, NFT_CMP_EQ, bridge);
    w.new_base_chain(&guard, "filter", NF_INET_PRE_ROUTING, PRIO_RAW);
    w.flush_chain(&guard);
    guard_rule(&mut w, &guard, bridge);
    let isolate = isolate_chain(bridge);
    w.new_base_chain(&isolate, "filter", NF_INET_FORWARD, PRIO_FILTER);
    w.flush_chain(&isolate);
    isolate_rules(&mut w, &isolate, bridge, internal);
    w.batch_end();
    w.finish()
}

/// One batch that creates container `id`'s [`dnat_chains`], each with one
/// rule per published port.
pub(crate) fn add_dnat(id: &str, addr: Ipv4Addr, ports: &[PortMapping]) -> Vec<u8> {
    let mut w = Writer::new();
    w.batch_begin();
    w.new_table();
    for (chain, hook) in dnat_chains(id)
        .iter()
        .zip([NF_INET_PRE_ROUTING, NF_INET_LOCAL_OUT])
    {
        w.new_base_chain(chain, "nat", hook, PRIO_DSTNAT);
        w.flush_chain(chain);
        for p in ports {
            dnat_rule(&mut w, chain, addr, p);
        }
    }
    w.batch_end();
    w.finish()
}

/// One batch that deletes chain `name` of the table with its rules.
pub(crate) fn delete_chain(name: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.batch_begin();
    w.del_chain(name);
    w.batch_end();
    w.finish()
}

/// `list chain ip tupper NAME`, read-only (not a batch): answered by the
/// chain or by `ENOENT`.
pub(crate) fn get_chain(name: &str) -> Vec<u8> {
    let mut w = Writer::new();
    let s = w.nft(NFT_MSG_GETCHAIN, NLM_F_REQUEST | NLM_F_ACK);
    w.put_str(k::NFTA_CHAIN_TABLE, TABLE);
    w.put_str(k::NFTA_CHAIN_NAME, name);
    w.end(s);
    w.finish()
}

/// A dump of every chain of family `ip` (the caller keeps those of [`TABLE`]).
pub(crate) fn dump_chains() -> Vec<u8> {
    let mut w = Writer::new();
    let s = w.nft(NFT_MSG_GETCHAIN, NLM_F_REQUEST | NLM_F_DUMP);
    w.end(s);
    w.finish()
}

/// Table and chain name of a `NFT_MSG_NEWCHAIN` reply payload (after the
/// `nlmsghdr`).
pub(crate) fn parse_chain(payload: &[u8]) -> Option<(String, String)> {
    use netlink_packet_core::{NlaBuffer, NlasIterator};
    let (mut table, mut name) = (None, None);
    for nla in NlasIterator::new(payload.get(NFGENMSG_LEN..)?) {
        let nla: NlaBuffer<&[u8]> = nla.ok()?;
        let v = nla.value();
        let s = || {
            let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
            String::from_utf8_lossy(&v[..end]).into_owned()
        };
        match nla.kind() {
            k::NFTA_CHAIN_TABLE => table = Some(s()),
            k::NFTA_CHAIN_NAME => name = Some(s()),
            _ => {}
        }
    }
    Some((table?, name?))
}

/// Whether a reply message type is `NFT_MSG_NEWCHAIN`.
pub(crate) fn is_chain_reply(kind: u16) -> bool {
    kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN
}

#[cfg(test)]
mod tests {
    //! Golden bytes, written from the kernel's layouts (x86_64):
    //! - `nlmsghdr`: u32 len, u16 type, u16 flags, u32 seq, u32 pid (16 bytes)
    //! - `nfgenmsg`: u8 family, u8 version, __be16 res_id (4 bytes)
    //! - `nlattr`: u16 len (unpadded), u16 type (| NLA_F_NESTED 0x8000 for
    //!   nests), value padded to 4. nftables numbers are big endian.
    //!
    //! Types: subsystem NFNL_SUBSYS_NFTABLES (10) << 8 | NFT_MSG_NEWTABLE 0,
    //! GETCHAIN 4, NEWCHAIN 3, DELCHAIN 5, NEWRULE 6, DELRULE 8; batch begin
    //! 0x10 and end 0x11 (NLMSG_MIN_TYPE, +1). Flags: REQUEST 1, ACK 4,
    //! CREATE 0x400, APPEND 0x800, DUMP 0x300. NFPROTO_IPV4 2, NF_ACCEPT 1,
    //! NF_INET_PRE_ROUTING 0, NF_INET_POST_ROUTING 4, NFT_REG_1 1, NFT_REG_2 2,
    //! NFT_CMP_EQ 0, NEQ 1, NFT_META_IIFNAME 6, OIFNAME 7, L4PROTO 16,
    //! NFT_NAT_DNAT 1, RTN_LOCAL 2.
    use super::*;
    use crate::net::{parse_publish, parse_subnet};
    use netlink_packet_core::{NetlinkBuffer, NlaBuffer, NlasIterator};

    /// Splits a buffer of messages into (type, flags, payload) triples.
    fn messages(mut b: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let m = NetlinkBuffer::new_checked(b).unwrap();
            let len = m.length() as usize;
            out.push((m.message_type(), m.flags(), m.payload().to_vec()));
            b = &b[align(len)..];
        }
        out
    }

    /// The expression names of a NEWRULE payload, parsed back.
    fn expr_names(payload: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        for nla in NlasIterator::new(&payload[NFGENMSG_LEN..]) {
            let nla: NlaBuffer<&[u8]> = nla.unwrap();
            if nla.kind() & !NLA_F_NESTED != k::NFTA_RULE_EXPRESSIONS {
                continue;
            }
            for elem in NlasIterator::new(nla.value()) {
                let elem: NlaBuffer<&[u8]> = elem.unwrap();
                for a in NlasIterator::new(elem.value()) {
                    let a: NlaBuffer<&[u8]> = a.unwrap();
                    if a.kind() == k::NFTA_EXPR_NAME {
                        let v = a.value();
                        names.push(String::from_utf8(v[..v.len() - 1].to_vec()).unwrap());
                    }
                }
            }
        }
        names
    }

    #[test]
    fn constants_match_libc() {
        assert_eq!(NFNL_SUBSYS_NFTABLES, 10);
        assert_eq!((NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END), (16, 17));
        assert_eq!(
            (
                NFT_MSG_NEWTABLE,
                NFT_MSG_NEWCHAIN,
                NFT_MSG_GETCHAIN,
                NFT_MSG_DELCHAIN
            ),
            (0, 3, 4, 5)
        );
        assert_eq!((NFT_MSG_NEWRULE, NFT_MSG_DELRULE), (6, 8));
        assert_eq!(
            (NFT_META_IIFNAME, NFT_META_OIFNAME, NFT_META_L4PROTO),
            (6, 7, 16)
        );
        assert_eq!(
            (NF_INET_PRE_ROUTING, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING),
            (0, 3, 4)
        );
        assert_eq!((RTN_LOCAL, NFT_REG_VERDICT, NF_DROP), (2, 0, 0));
    }

    /// Reads the values of a C enum from a header: implicit values count up
    /// from the previous one, `= N` and `= 1 << N` are understood.
    fn enum_values(header: &str, name: &str) -> Vec<(String, i64)> {
        let start = header.find(&format!("enum {name} {{")).unwrap();
        let body = &header[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
        let mut out = Vec::new();
        let mut next = 0i64;
        let mut in_comment = false;
        for raw in body.lines() {
            let mut line = raw.trim();
            if in_comment {
                match line.find("*/") {
                    Some(i) => {
                        in_comment = false;
                        line = line[i + 2..].trim();
                    }
                    None => continue,
                }
            }
            if let Some(i) = line.find("/*") {
                if !line[i..].contains("*/") {
                    in_comment = true;
                }
                line = line[..i].trim();
            }
            let line = line.trim_end_matches(',').trim();
            if line.is_empty() {
                continue;
            }
            let (ident, value) = match line.split_once('=') {
                Some((i, v)) => {
                    let v = v.trim();
                    let v = match v.split_once("<<") {
                        Some((a, b)) => {
                            a.trim().parse::<i64>().unwrap() << b.trim().parse::<i64>().unwrap()
                        }
                        None => v.parse().unwrap(),
                    };
                    (i.trim(), v)
                }
                None => (line, next),
            };
            out.push((ident.to_string(), value));
            next = value + 1;
        }
        out
    }

    #[test]
    fn constants_match_the_system_headers() {
        let Ok(h) = std::fs::read_to_string("/usr/include/linux/netfilter/nf_tables.h") else {
            eprintln!("no /usr/include/linux/netfilter/nf_tables.h: skipped");
            return;
        };
        let get = |e: &str, id: &str| -> i64 {
            enum_values(&h, e)
                .into_iter()
                .find(|(n, _)| n == id)
                .unwrap_or_else(|| panic!("{id} not in enum {e}"))
                .1
        };
        let checks: &[(&str, &str, i64)] = &[
            (
                "nft_table_attributes",
                "NFTA_TABLE_NAME",
                k::NFTA_TABLE_NAME as i64,
            ),
            (
                "nft_table_attributes",
                "NFTA_TABLE_FLAGS",
                k::NFTA_TABLE_FLAGS as i64,
            ),
            (
                "nft_chain_attributes",
                "NFTA_CHAIN_TABLE",
                k::NFTA_CHAIN_TABLE as i64,
            ),
            (
                "nft_chain_attributes",
                "NFTA_CHAIN_NAME",
                k::NFTA_CHAIN_NAME as i64,
            ),
            (
                "nft_chain_attributes",
                "NFTA_CHAIN_HOOK",
                k::NFTA_CHAIN_HOOK as i64,
            ),
            (
                "nft_chain_attributes",
                "NFTA_CHAIN_POLICY",
                k::NFTA_CHAIN_POLICY as i64,
            ),
            (
                "nft_chain_attributes",
                "NFTA_CHAIN_TYPE",
                k::NFTA_CHAIN_TYPE as i64,
            ),
            (
                "nft_hook_attributes",
                "NFTA_HOOK_HOOKNUM",
                k::NFTA_HOOK_HOOKNUM as i64,
            ),
            (
                "nft_hook_attributes",
                "NFTA_HOOK_PRIORITY",
                k::NFTA_HOOK_PRIORITY as i64,
            ),
            (
                "nft_rule_attributes",
                "NFTA_RULE_TABLE",
                k::NFTA_RULE_TABLE as i64,
            ),
            (
                "nft_rule_attributes",
                "NFTA_RULE_CHAIN",
                k::NFTA_RULE_CHAIN as i64,
            ),
            (
                "nft_rule_attributes",
                "NFTA_RULE_EXPRESSIONS",
                k::NFTA_RULE_EXPRESSIONS as i64,
            ),
            (
                "nft_list_attributes",
                "NFTA_LIST_ELEM",
                k::NFTA_LIST_ELEM as i64,
            ),
            (
                "nft_expr_attributes",
                "NFTA_EXPR_NAME",
                k::NFTA_EXPR_NAME as i64,
            ),
            (
                "nft_expr_attributes",
                "NFTA_EXPR_DATA",
                k::NFTA_EXPR_DATA as i64,
            ),
            (
                "nft_data_attributes",
                "NFTA_DATA_VALUE",
                k::NFTA_DATA_VALUE as i64,
            ),
            (
                "nft_data_attributes",
                "NFTA_DATA_VERDICT",
                k::NFTA_DATA_VERDICT as i64,
            ),
            (
                "nft_verdict_attributes",
                "NFTA_VERDICT_CODE",
                k::NFTA_VERDICT_CODE as i64,
            ),
            (
                "nft_payload_attributes",
                "NFTA_PAYLOAD_DREG",
                k::NFTA_PAYLOAD_DREG as i64,
            ),
            (
                "nft_payload_attributes",
                "NFTA_PAYLOAD_BASE",
                k::NFTA_PAYLOAD_BASE as i64,
            ),
            (
                "nft_payload_attributes",
                "NFTA_PAYLOAD_OFFSET",
                k::NFTA_PAYLOAD_OFFSET as i64,
            ),
            (
                "nft_payload_attributes",
                "NFTA_PAYLOAD_LEN",
                k::NFTA_PAYLOAD_LEN as i64,
            ),
            (
                "nft_bitwise_attributes",
                "NFTA_BITWISE_SREG",
                k::NFTA_BITWISE_SREG as i64,
            ),
            (
                "nft_bitwise_attributes",
                "NFTA_BITWISE_DREG",
                k::NFTA_BITWISE_DREG as i64,
            ),
            (
                "nft_bitwise_attributes",
                "NFTA_BITWISE_LEN",
                k::NFTA_BITWISE_LEN as i64,
            ),
            (
                "nft_bitwise_attributes",
                "NFTA_BITWISE_MASK",
                k::NFTA_BITWISE_MASK as i64,
            ),
            (
                "nft_bitwise_attributes",
                "NFTA_BITWISE_XOR",
                k::NFTA_BITWISE_XOR as i64,
            ),
            (
                "nft_cmp_attributes",
                "NFTA_CMP_SREG",
                k::NFTA_CMP_SREG as i64,
            ),
            ("nft_cmp_attributes", "NFTA_CMP_OP", k::NFTA_CMP_OP as i64),
            (
                "nft_cmp_attributes",
                "NFTA_CMP_DATA",
                k::NFTA_CMP_DATA as i64,
            ),
            (
                "nft_meta_attributes",
                "NFTA_META_DREG",
                k::NFTA_META_DREG as i64,
            ),
            (
                "nft_meta_attributes",
                "NFTA_META_KEY",
                k::NFTA_META_KEY as i64,
            ),
            (
                "nft_immediate_attributes",
                "NFTA_IMMEDIATE_DREG",
                k::NFTA_IMMEDIATE_DREG as i64,
            ),
            (
                "nft_immediate_attributes",
                "NFTA_IMMEDIATE_DATA",
                k::NFTA_IMMEDIATE_DATA as i64,
            ),
            (
                "nft_nat_attributes",
                "NFTA_NAT_TYPE",
                k::NFTA_NAT_TYPE as i64,
            ),
            (
                "nft_nat_attributes",
                "NFTA_NAT_FAMILY",
                k::NFTA_NAT_FAMILY as i64,
            ),
            (
                "nft_nat_attributes",
                "NFTA_NAT_REG_ADDR_MIN",
                k::NFTA_NAT_REG_ADDR_MIN as i64,
            ),
            (
                "nft_nat_attributes",
                "NFTA_NAT_REG_PROTO_MIN",
                k::NFTA_NAT_REG_PROTO_MIN as i64,
            ),
            (
                "nft_fib_attributes",
                "NFTA_FIB_DREG",
                k::NFTA_FIB_DREG as i64,
            ),
            (
                "nft_fib_attributes",
                "NFTA_FIB_RESULT",
                k::NFTA_FIB_RESULT as i64,
            ),
            (
                "nft_fib_attributes",
                "NFTA_FIB_FLAGS",
                k::NFTA_FIB_FLAGS as i64,
            ),
            (
                "nft_fib_result",
                "NFT_FIB_RESULT_ADDRTYPE",
                k::NFT_FIB_RESULT_ADDRTYPE as i64,
            ),
            (
                "nft_fib_flags",
                "NFTA_FIB_F_DADDR",
                k::NFTA_FIB_F_DADDR as i64,
            ),
            (
                "nft_payload_bases",
                "NFT_PAYLOAD_NETWORK_HEADER",
                k::NFT_PAYLOAD_NETWORK_HEADER as i64,
            ),
            (
                "nft_payload_bases",
                "NFT_PAYLOAD_TRANSPORT_HEADER",
                k::NFT_PAYLOAD_TRANSPORT_HEADER as i64,
            ),
        ];
        for (e, id, ours) in checks {
            assert_eq!(get(e, id), *ours, "{id}");
        }
        assert_eq!(
            get("nft_ct_attributes", "NFTA_CT_DREG"),
            k::NFTA_CT_DREG as i64
        );
        assert_eq!(
            get("nft_ct_attributes", "NFTA_CT_KEY"),
            k::NFTA_CT_KEY as i64
        );
        assert_eq!(get("nft_ct_keys", "NFT_CT_STATUS"), NFT_CT_STATUS as i64);
        if let Ok(c) = std::fs::read_to_string("/usr/include/linux/netfilter/nf_conntrack_common.h")
        {
            assert!(c.contains("IPS_DST_NAT_BIT = 5,"), "IPS_DST_NAT moved");
            assert_eq!(IPS_DST_NAT, 1 << 5);
        }
    }

    #[test]
    fn golden_masquerade_batch() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            // --- NFNL_MSG_BATCH_BEGIN: len 20, type 0x10, REQUEST
            20, 0, 0, 0,  0x10, 0,  1, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            //     nfgenmsg: AF_UNSPEC, v0, res_id = htons(NFNL_SUBSYS_NFTABLES)
            0, 0, 0, 10,
            // --- NEWTABLE: len 40, type 0x0a00, REQUEST|ACK|CREATE (0x405)
            40, 0, 0, 0,  0x00, 0x0a,  0x05, 0x04,  0, 0, 0, 0,  0, 0, 0, 0,
            2, 0, 0, 0,                                   // nfgenmsg: NFPROTO_IPV4
            11, 0, 1, 0,  b't', b'u', b'p', b'p', b'e', b'r', 0, 0, // NFTA_TABLE_NAME
            8, 0, 2, 0,  0, 0, 0, 0,                      // NFTA_TABLE_FLAGS 0
            // --- NEWCHAIN: len 88, type 0x0a03, 0x405
            88, 0, 0, 0,  0x03, 0x0a,  0x05, 0x04,  0, 0, 0, 0,  0, 0, 0, 0,
            2, 0, 0, 0,
            11, 0, 1, 0,  b't', b'u', b'p', b'p', b'e', b'r', 0, 0, // NFTA_CHAIN_TABLE
            // NFTA_CHAIN_NAME "masq-tpt-br0\0" (4 + 13 = 17, padded to 20)
            17, 0, 3, 0,  b'm', b'a', b's', b'q', b'-', b't', b'p', b't',
            b'-', b'b', b'r', b'0', 0, 0, 0, 0,
            20, 0, 4, 0x80,                               // NFTA_CHAIN_HOOK (nested)
            8, 0, 1, 0,  0, 0, 0, 4,                      //   HOOKNUM POST_ROUTING
            8, 0, 2, 0,  0, 0, 0, 100,                    //   PRIORITY 100 (srcnat)
            8, 0, 5, 0,  0, 0, 0, 1,                      // NFTA_CHAIN_POLICY NF_ACCEPT
            8, 0, 7, 0,  b'n', b'a', b't', 0,             // NFTA_CHAIN_TYPE "nat"
            // --- DELRULE (flush chain): len 52, type 0x0a08, REQUEST|ACK
            52, 0, 0, 0,  0x08, 0x0a,  0x05, 0x00,  0, 0, 0, 0,  0, 0, 0, 0,
            2, 0, 0, 0,
            11, 0, 1, 0,  b't', b'u', b'p', b'p', b'e', b'r', 0, 0, // NFTA_RULE_TABLE
            17, 0, 2, 0,  b'm', b'a', b's', b'q', b'-', b't', b'p', b't', // NFTA_RULE_CHAIN
            b'-', b'b', b'r', b'0', 0, 0, 0, 0,
            // --- NEWRULE: len 332, type 0x0a06, REQUEST|ACK|CREATE|APPEND (0xc05)
            0x4c, 0x01, 0, 0,  0x06, 0x0a,  0x05, 0x0c,  0, 0, 0, 0,  0, 0, 0, 0,
            2, 0, 0, 0,
            11, 0, 1, 0,  b't', b'u', b'p', b'p', b'e', b'r', 0, 0,
            17, 0, 2, 0,  b'm', b'a', b's', b'q', b'-', b't', b'p', b't',
            b'-', b'b', b'r', b'0', 0, 0, 0, 0,
            0x18, 0x01, 4, 0x80,                          // NFTA_RULE_EXPRESSIONS (280)
            // [ payload load 4b @ network header + 12 => reg 1 ]
            52, 0, 1, 0x80,                               // NFTA_LIST_ELEM
            12, 0, 1, 0,  b'p', b'a', b'y', b'l', b'o', b'a', b'd', 0,
            36, 0, 2, 0x80,                               // NFTA_EXPR_DATA
            8, 0, 1, 0,  0, 0, 0, 1,                      //   DREG 1
            8, 0, 2, 0,  0, 0, 0, 1,                      //   BASE network
            8, 0, 3, 0,  0, 0, 0, 12,                     //   OFFSET 12
            8, 0, 4, 0,  0, 0, 0, 4,                      //   LEN 4
            // [ bitwise reg 1 = ( reg 1 & 0x0000ffff ) ^ 0x00000000 ]
            68, 0, 1, 0x80,
            12, 0, 1, 0,  b'b', b'i', b't', b'w', b'i', b's', b'e', 0,
            52, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,                      //   SREG 1
            8, 0, 2, 0,  0, 0, 0, 1,                      //   DREG 1
            8, 0, 3, 0,  0, 0, 0, 4,                      //   LEN 4
            12, 0, 4, 0x80,  8, 0, 1, 0,  255, 255, 0, 0, //   MASK { VALUE }
            12, 0, 5, 0x80,  8, 0, 1, 0,  0, 0, 0, 0,     //   XOR { VALUE }
            // [ cmp eq reg 1 10.89.0.0 ]
            44, 0, 1, 0x80,
            8, 0, 1, 0,  b'c', b'm', b'p', 0,
            32, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,                      //   SREG 1
            8, 0, 2, 0,  0, 0, 0, 0,                      //   OP eq
            12, 0, 3, 0x80,  8, 0, 1, 0,  10, 89, 0, 0,   //   DATA { VALUE }
            // [ meta load oifname => reg 1 ]
            36, 0, 1, 0x80,
            9, 0, 1, 0,  b'm', b'e', b't', b'a', 0, 0, 0, 0,
            20, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,                      //   DREG 1
            8, 0, 2, 0,  0, 0, 0, 7,                      //   KEY oifname
            // [ cmp neq reg 1 "tpt-br0" (16 bytes) ]
            56, 0, 1, 0x80,
            8, 0, 1, 0,  b'c', b'm', b'p', 0,
            44, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,
            8, 0, 2, 0,  0, 0, 0, 1,                      //   OP neq
            24, 0, 3, 0x80,  20, 0, 1, 0,
            b't', b'p', b't', b'-', b'b', b'r', b'0', 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // [ masq ]
            20, 0, 1, 0x80,
            9, 0, 1, 0,  b'm', b'a', b's', b'q', 0, 0, 0, 0,
            4, 0, 2, 0x80,                                // empty NFTA_EXPR_DATA
            // --- NFNL_MSG_BATCH_END
            20, 0, 0, 0,  0x11, 0,  1, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            0, 0, 0, 10,
        ];
        // The bytes above are the batch up to its first rule, and its end.
        let got = ensure_bridge_chains("tpt-br0", parse_subnet("10.89.0.0/16").unwrap(), false);
        let (head, tail) = want.split_at(want.len() - 20);
        assert_eq!(&got[..head.len()], head);
        assert_eq!(&got[got.len() - 20..], tail);
        let msgs = messages(&got);
        let kinds: Vec<u16> = msgs.iter().map(|m| m.0).collect();
        assert_eq!(
            kinds,
            [
                0x10, 0x0a00, 0x0a03, 0x0a08, 0x0a06, 0x0a06, 0x0a06, 0x0a03, 0x0a08, 0x0a06,
                0x0a03, 0x0a08, 0x0a06, 0x0a06, 0x0a06, 0x11
            ]
        );
        let masq = ["payload", "bitwise", "cmp", "meta", "cmp", "masq"];
        for rule in &msgs[4..6] {
            assert_eq!(expr_names(&rule.2), masq);
        }
        let mut ct_masq = vec!["ct", "bitwise", "cmp"];
        ct_masq.extend(masq);
        assert_eq!(expr_names(&msgs[6].2), ct_masq);
        // ct status & IPS_DST_NAT (0x20, host order) != 0
        #[rustfmt::skip]
        let ct: &[u8] = &[
            7, 0, 1, 0,  b'c', b't', 0, 0,  20, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,  8, 0, 2, 0,  0, 0, 0, 2,
        ];
        assert!(msgs[6].2.windows(ct.len()).any(|w| w == ct));
        let dnat_bit = 0x20u32.to_ne_bytes();
        assert!(msgs[6].2.windows(4).any(|w| w == dnat_bit));
        // The second rule: from 127.0.0.0/8, into the bridge (oifname ==).
        let loopback: &[u8] = &[12, 0, 4, 0x80, 8, 0, 1, 0, 255, 0, 0, 0];
        assert!(msgs[5].2.windows(12).any(|w| w == loopback));
        let eq_bridge: &[u8] = &[8, 0, 2, 0, 0, 0, 0, 0, 24, 0, 3, 0x80, 20, 0, 1, 0, b't'];
        assert!(msgs[5].2.windows(17).any(|w| w == eq_bridge));
        assert!(msgs[6].2.windows(17).any(|w| w == eq_bridge));
        // The guard chain: filter, prerouting (0) at priority -300 (raw).
        #[rustfmt::skip]
        let hook: &[u8] = &[20, 0, 4, 0x80,  8, 0, 1, 0,  0, 0, 0, 0,  8, 0, 2, 0,  0xff, 0xff, 0xfe, 0xd4];
        assert!(msgs[7].2.windows(hook.len()).any(|w| w == hook));
        assert_eq!(
            parse_chain(&msgs[7].2),
            Some((TABLE.into(), "guard-tpt-br0".into()))
        );
        assert!(msgs[7]
            .2
            .ends_with(&[11, 0, 7, 0, b'f', b'i', b'l', b't', b'e', b'r', 0, 0]));
        assert_eq!(
            expr_names(&msgs[9].2),
            ["meta", "cmp", "payload", "bitwise", "cmp", "immediate"]
        );
        // The isolation chain: filter, forward (2) at priority 0.
        #[rustfmt::skip]
        let hook: &[u8] = &[20, 0, 4, 0x80,  8, 0, 1, 0,  0, 0, 0, 2,  8, 0, 2, 0,  0, 0, 0, 0];
        assert!(msgs[10].2.windows(hook.len()).any(|w| w == hook));
        assert_eq!(
            parse_chain(&msgs[10].2),
            Some((TABLE.into(), "isolate-tpt-br0".into()))
        );
        assert_eq!(
            expr_names(&msgs[12].2),
            ["ct", "bitwise", "cmp", "immediate"]
        );
        // ct status dnat accept (verdict code 1).
        assert!(msgs[12].2.ends_with(&[8, 0, 1, 0, 0, 0, 0, 1]));
        let drop = ["meta", "cmp", "meta", "cmp", "meta", "cmp", "immediate"];
        for (rule, first) in [(&msgs[13].2, 7u8), (&msgs[14].2, 6u8)] {
            assert_eq!(expr_names(rule), drop);
            // meta KEY oifname (7) then iifname (6), or the other way round.
            let key = [8, 0, 2, 0, 0, 0, 0, first];
            let at = rule.windows(8).position(|w| w == key).unwrap();
            let other = [8, 0, 2, 0, 0, 0, 0, 13 - first];
            assert!(rule.windows(8).position(|w| w == other).unwrap() > at);
            // The last compare: the first two bytes, "tn".
            let tn: &[u8] = &[12, 0, 3, 0x80, 6, 0, 1, 0, b't', b'n', 0, 0];
            assert!(rule.windows(tn.len()).any(|w| w == tn));
            assert!(rule.ends_with(&[8, 0, 1, 0, 0, 0, 0, 0]), "drop");
        }
    }

    /// An internal network's isolation chain drops all that is forwarded
    /// into or out of its bridge, first (before `ct status dnat accept`).
    #[test]
    fn an_internal_bridge_forwards_nothing() {
        let got = ensure_bridge_chains(
            "tn0123456789ab",
            parse_subnet("10.90.0.0/24").unwrap(),
            true,
        );
        let msgs = messages(&got);
        let plain = messages(&ensure_bridge_chains(
            "tn0123456789ab",
            parse_subnet("10.90.0.0/24").unwrap(),
            false,
        ));
        assert_eq!(msgs.len(), plain.len() + 2);
        for (rule, first) in [(&msgs[12].2, 6u8), (&msgs[13].2, 7u8)] {
            assert_eq!(
                expr_names(rule),
                ["meta", "cmp", "meta", "cmp", "immediate"]
            );
            let key = [8, 0, 2, 0, 0, 0, 0, first];
            let other = [8, 0, 2, 0, 0, 0, 0, 13 - first];
            let at = rule.windows(8).position(|w| w == key).unwrap();
            assert!(rule.windows(8).position(|w| w == other).unwrap() > at);
            assert!(rule.ends_with(&[8, 0, 1, 0, 0, 0, 0, 0]), "drop");
        }
        assert_eq!(
            expr_names(&msgs[14].2),
            ["ct", "bitwise", "cmp", "immediate"]
        );
    }

    #[test]
    fn golden_drop_verdict() {
        let mut w = Writer::new();
        w.verdict(NF_DROP);
        #[rustfmt::skip]
        let want: &[u8] = &[
            // [ immediate reg 0 drop ]
            48, 0, 1, 0x80,                               // NFTA_LIST_ELEM
            14, 0, 1, 0,  b'i', b'm', b'm', b'e', b'd', b'i', b'a', b't', b'e', 0, 0, 0,
            28, 0, 2, 0x80,                               // NFTA_EXPR_DATA
            8, 0, 1, 0,  0, 0, 0, 0,                      //   DREG 0 (NFT_REG_VERDICT)
            16, 0, 2, 0x80,                               //   NFTA_IMMEDIATE_DATA
            12, 0, 2, 0x80,                               //     NFTA_DATA_VERDICT
            8, 0, 1, 0,  0, 0, 0, 0,                      //       CODE NF_DROP
        ];
        assert_eq!(w.finish(), want);
    }

    #[test]
    fn dnat_chains_name_their_container() {
        let id = "0123456789ab";
        let [incoming, local] = dnat_chains(id);
        assert_eq!(dnat_chain_owner(&incoming), Some(id));
        assert_eq!(dnat_chain_owner(&local), Some(id));
        for other in [
            "masq-tupper0",
            "guard-tupper0",
            "dnat-",
            "dnat-0123456789a",
            "dnat-0123456789ab-out",
            "dnat-0123456789AB",
        ] {
            assert_eq!(dnat_chain_owner(other), None, "{other}");
        }
    }

    #[test]
    fn golden_dnat_rule() {
        let mut w = Writer::new();
        dnat_rule(
            &mut w,
            "dnat-0123456789ab",
            Ipv4Addr::new(10, 89, 0, 2),
            &parse_publish("8080:80/tcp").unwrap(),
        );
        #[rustfmt::skip]
        let want: &[u8] = &[
            // NEWRULE: len 456 (0x1c8), type 0x0a06, flags 0xc05
            0xc8, 0x01, 0, 0,  0x06, 0x0a,  0x05, 0x0c,  0, 0, 0, 0,  0, 0, 0, 0,
            2, 0, 0, 0,
            11, 0, 1, 0,  b't', b'u', b'p', b'p', b'e', b'r', 0, 0,
            // NFTA_RULE_CHAIN "dnat-0123456789ab\0" (4 + 18 = 22, padded to 24)
            22, 0, 2, 0,  b'd', b'n', b'a', b't', b'-', b'0', b'1', b'2', b'3', b'4',
            b'5', b'6', b'7', b'8', b'9', b'a', b'b', 0,  0, 0,
            0x90, 0x01, 4, 0x80,                          // NFTA_RULE_EXPRESSIONS (400)
            // [ fib daddr type => reg 1 ]
            40, 0, 1, 0x80,
            8, 0, 1, 0,  b'f', b'i', b'b', 0,
            28, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,                      //   DREG 1
            8, 0, 2, 0,  0, 0, 0, 3,                      //   RESULT addrtype
            8, 0, 3, 0,  0, 0, 0, 2,                      //   FLAGS daddr
            // [ cmp eq reg 1 0x00000002 ] (RTN_LOCAL, host order)
            44, 0, 1, 0x80,
            8, 0, 1, 0,  b'c', b'm', b'p', 0,
            32, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,
            8, 0, 2, 0,  0, 0, 0, 0,
            12, 0, 3, 0x80,  8, 0, 1, 0,  2, 0, 0, 0,
            // [ meta load l4proto => reg 1 ]
            36, 0, 1, 0x80,
            9, 0, 1, 0,  b'm', b'e', b't', b'a', 0, 0, 0, 0,
            20, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,
            8, 0, 2, 0,  0, 0, 0, 16,                     //   KEY l4proto
            // [ cmp eq reg 1 0x06 ] (value of 1 byte: 4 + 1 = 5, padded to 8)
            44, 0, 1, 0x80,
            8, 0, 1, 0,  b'c', b'm', b'p', 0,
            32, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,
            8, 0, 2, 0,  0, 0, 0, 0,
            12, 0, 3, 0x80,  5, 0, 1, 0,  6, 0, 0, 0,
            // [ payload load 2b @ transport header + 2 => reg 1 ]
            52, 0, 1, 0x80,
            12, 0, 1, 0,  b'p', b'a', b'y', b'l', b'o', b'a', b'd', 0,
            36, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,
            8, 0, 2, 0,  0, 0, 0, 2,                      //   BASE transport
            8, 0, 3, 0,  0, 0, 0, 2,                      //   OFFSET 2
            8, 0, 4, 0,  0, 0, 0, 2,                      //   LEN 2
            // [ cmp eq reg 1 0x901f ] (port 8080, big endian)
            44, 0, 1, 0x80,
            8, 0, 1, 0,  b'c', b'm', b'p', 0,
            32, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,
            8, 0, 2, 0,  0, 0, 0, 0,
            12, 0, 3, 0x80,  6, 0, 1, 0,  0x1f, 0x90, 0, 0,
            // [ immediate reg 1 10.89.0.2 ]
            44, 0, 1, 0x80,
            14, 0, 1, 0,  b'i', b'm', b'm', b'e', b'd', b'i', b'a', b't', b'e', 0, 0, 0,
            24, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,                      //   DREG 1
            12, 0, 2, 0x80,  8, 0, 1, 0,  10, 89, 0, 2,   //   DATA { VALUE }
            // [ immediate reg 2 0x5000 ] (port 80, big endian)
            44, 0, 1, 0x80,
            14, 0, 1, 0,  b'i', b'm', b'm', b'e', b'd', b'i', b'a', b't', b'e', 0, 0, 0,
            24, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 2,                      //   DREG 2
            12, 0, 2, 0x80,  6, 0, 1, 0,  0, 80, 0, 0,
            // [ nat dnat ip addr_min reg 1 proto_min reg 2 ]
            48, 0, 1, 0x80,
            8, 0, 1, 0,  b'n', b'a', b't', 0,
            36, 0, 2, 0x80,
            8, 0, 1, 0,  0, 0, 0, 1,                      //   TYPE dnat
            8, 0, 2, 0,  0, 0, 0, 2,                      //   FAMILY ipv4
            8, 0, 3, 0,  0, 0, 0, 1,                      //   REG_ADDR_MIN 1
            8, 0, 5, 0,  0, 0, 0, 2,                      //   REG_PROTO_MIN 2
        ];
        let got = w.finish();
        assert_eq!(got, want);
        let msgs = messages(&got);
        assert_eq!(
            expr_names(&msgs[0].2),
            [
                "fib",
                "cmp",
                "meta",
                "cmp",
                "payload",
                "cmp",
                "immediate",
                "immediate",
                "nat"
            ]
        );
    }

    #[test]
    fn golden_dnat_batch_shape() {
        let ports = [
            parse_publish("8080:80/tcp").unwrap(),
            parse_publish("5353:53/udp").unwrap(),
        ];
        let got = add_dnat("0123456789ab", Ipv4Addr::new(10, 89, 0, 2), &ports);
        let msgs = messages(&got);
        let kinds: Vec<u16> = msgs.iter().map(|m| m.0).collect();
        assert_eq!(
            kinds,
            [0x10, 0x0a00, 0x0a03, 0x0a08, 0x0a06, 0x0a06, 0x0a03, 0x0a08, 0x0a06, 0x0a06, 0x11]
        );
        // The chain messages: prerouting (0), then output (3), at priority
        // -100 (dstnat).
        for (i, hooknum, name) in [
            (2, 0, "dnat-0123456789ab"),
            (6, 3, "dnat-0123456789ab-local"),
        ] {
            #[rustfmt::skip]
            let hook: &[u8] = &[20, 0, 4, 0x80,  8, 0, 1, 0,  0, 0, 0, hooknum,  8, 0, 2, 0,  0xff, 0xff, 0xff, 0x9c];
            assert!(msgs[i].2.windows(hook.len()).any(|w| w == hook), "{name}");
            assert_eq!(parse_chain(&msgs[i].2), Some((TABLE.into(), name.into())));
        }
        // Each chain has the same rules: the same expressions after the
        // table's name (4 + 12) and the chain's (24, 28 with "-local").
        assert_eq!(msgs[4].2[40..], msgs[8].2[44..]);
        assert_eq!(msgs[5].2[40..], msgs[9].2[44..]);
    }

    #[test]
    fn golden_delete_and_get_chain() {
        #[rustfmt::skip]
        let del: &[u8] = &[
            20, 0, 0, 0,  0x10, 0,  1, 0,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 10,
            // DELCHAIN: len 56, type 0x0a05, REQUEST|ACK
            56, 0, 0, 0,  0x05, 0x0a,  0x05, 0x00,  0, 0, 0, 0,  0, 0, 0, 0,
            2, 0, 0, 0,
            11, 0, 1, 0,  b't', b'u', b'p', b'p', b'e', b'r', 0, 0,   // NFTA_CHAIN_TABLE
            22, 0, 3, 0,  b'd', b'n', b'a', b't', b'-', b'0', b'1', b'2', b'3', b'4',
            b'5', b'6', b'7', b'8', b'9', b'a', b'b', 0,  0, 0,       // NFTA_CHAIN_NAME
            20, 0, 0, 0,  0x11, 0,  1, 0,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 10,
        ];
        assert_eq!(delete_chain("dnat-0123456789ab"), del);
        // GETCHAIN: the same body, type 0x0a04, not in a batch.
        let mut get = del[20..76].to_vec();
        get[4] = 0x04;
        assert_eq!(get_chain("dnat-0123456789ab"), get);
        assert_eq!(
            parse_chain(&get[16..]),
            Some((TABLE.into(), "dnat-0123456789ab".into()))
        );
        #[rustfmt::skip]
        let dump: &[u8] = &[
            // GETCHAIN dump: len 20, type 0x0a04, REQUEST|DUMP (0x301); NFPROTO_IPV4
            20, 0, 0, 0,  0x04, 0x0a,  0x01, 0x03,  0, 0, 0, 0,  0, 0, 0, 0,  2, 0, 0, 0,
        ];
        assert_eq!(dump_chains(), dump);
    }
}
