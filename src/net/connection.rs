//! The user-defined networks a container is on besides its first
//! (`network connect`, docker's): each one more veth pair, `ethN` in the
//! container (N its slot, 1 to [`MAX_SLOT`]), an address leased on that
//! network's subnet, no default route (the first network keeps it, as
//! docker's default gateway stays on the network the container started on).
//!
//! The record keeps them in [`super::Settings::connected`]: what was asked
//! for (network, aliases, `--ip`) and, while it runs or after its last run,
//! what it got (interface, address, host end).

use std::net::Ipv4Addr;

use crate::error::{Error, Result};

/// The highest slot: `eth1` to `eth9` (the host end's name has room for one
/// more character after [`super::host_veth_name`]'s 14).
pub const MAX_SLOT: u8 = 9;

/// A user-defined network the container is connected to besides its first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Connection {
    /// The network's name.
    pub network: String,
    /// `network connect --alias`: more names by which its containers find
    /// this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `network connect --ip`: the address every start asks for again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_address: Option<String>,
    /// The interface in the container (`eth1`...), while it runs or after
    /// its last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Its address on the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The prefix length of the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
    /// The network's gateway (no route goes through it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The interface's MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// The host end of its veth pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_veth: Option<String>,
}

impl Connection {
    /// What was asked for, without what a run got.
    pub fn requested(&self) -> Connection {
        Connection {
            network: self.network.clone(),
            aliases: self.aliases.clone(),
            requested_address: self.requested_address.clone(),
            ..Connection::default()
        }
    }

    /// `--ip`, parsed.
    pub fn requested_ip(&self) -> Result<Option<Ipv4Addr>> {
        self.requested_address
            .as_deref()
            .map(|s| {
                s.parse().map_err(|_| {
                    Error::msg(format!(
                        "network {}: invalid --ip {s:?}: not an IPv4 address",
                        self.network
                    ))
                })
            })
            .transpose()
    }
}

/// The container's interface of slot `slot`: `eth0` the first network's.
pub fn interface_name(slot: u8) -> String {
    format!("eth{slot}")
}

/// The host end of the veth pair of slot `slot` of container `id`:
/// [`super::host_veth_name`] (slot 0) followed by the slot's digit.
pub fn slot_veth_name(id: &str, slot: u8) -> String {
    let base = super::host_veth_name(id);
    match slot {
        0 => base,
        n => format!("{base}{n}"),
    }
}

/// The lowest slot that none of `used` (interface names) holds; `None`
/// when all [`MAX_SLOT`] are taken.
pub fn free_slot<'a>(used: impl Iterator<Item = &'a str> + Clone) -> Option<u8> {
    (1..=MAX_SLOT).find(|&n| {
        let name = interface_name(n);
        !used.clone().any(|u| u == name)
    })
}

/// Checks connections `connected` of a container whose first network is
/// `first` (`None`: the default bridge): each a valid network name, none
/// twice nor the first, valid aliases, at most [`MAX_SLOT`].
pub fn validate(first: Option<&str>, connected: &[Connection]) -> Result<()> {
    if connected.len() > MAX_SLOT as usize {
        return Err(Error::msg(format!(
            "network connect: a container is on at most {} networks",
            MAX_SLOT as usize + 1
        )));
    }
    for (i, c) in connected.iter().enumerate() {
        crate::names::validate("network name", &c.network)?;
        if first == Some(c.network.as_str())
            || connected[..i].iter().any(|o| o.network == c.network)
        {
            return Err(Error::msg(format!(
                "network connect {}: the container is on it already",
                c.network
            )));
        }
        if let Some(a) = c.aliases.iter().find(|a| !crate::plan::valid_hostname(a)) {
            return Err(Error::msg(format!(
                "invalid --alias {a:?}: use letters, digits, '-' and '.', at most 64 bytes"
            )));
        }
        c.requested_ip()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_take_the_lowest_free_interface() {
        assert_eq!(free_slot([].iter().copied()), Some(1));
        assert_eq!(free_slot(["eth1", "eth3"].iter().copied()), Some(2));
        let all: Vec<String> = (1..=MAX_SLOT).map(interface_name).collect();
        assert_eq!(free_slot(all.iter().map(|s| s.as_str())), None);
    }

    #[test]
    fn a_slots_veth_is_the_first_ones_and_its_digit() {
        let id = "0123456789abcdef";
        assert_eq!(slot_veth_name(id, 0), "tp0123456789ab");
        assert_eq!(slot_veth_name(id, 3), "tp0123456789ab3");
        assert!(slot_veth_name(id, MAX_SLOT).len() <= super::super::MAX_IFNAME);
    }

    #[test]
    fn validation_refuses_twice_the_same_network_and_bad_aliases() {
        let c = |n: &str| Connection {
            network: n.to_string(),
            ..Connection::default()
        };
        assert!(validate(None, &[c("a"), c("b")]).is_ok());
        assert!(validate(Some("a"), &[c("a")]).is_err());
        assert!(validate(None, &[c("a"), c("a")]).is_err());
        assert!(validate(None, &[c("Bad")]).is_err());
        let aliased = Connection {
            aliases: vec!["no space".into()],
            ..c("a")
        };
        assert!(validate(None, &[aliased]).is_err());
        let ip = Connection {
            requested_address: Some("10.1".into()),
            ..c("a")
        };
        assert!(validate(None, &[ip]).is_err());
        let many: Vec<Connection> = (0..=MAX_SLOT).map(|i| c(&format!("n{i}"))).collect();
        assert!(validate(None, &many).is_err());
    }
}
