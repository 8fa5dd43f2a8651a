//! `network connect` and `network disconnect`, as docker's: a container of
//! a bridge network (the default one or a user-defined one) is put on more
//! user-defined networks, each one more interface (`eth1`...) with an
//! address of that network, found by the network's other containers by
//! its name, aliases and ID ([`crate::net::connection`]).
//!
//! A running container is connected at once: an address leased, its place
//! among the network's members taken, a veth pair made into its network
//! namespace, the network's part of its `/etc/hosts` written; then its
//! record names the connection. A stopped one only gets the connection in
//! its record. Every start of the container makes its connections again
//! after its first network ([`Store::connect_prepared`]); its end takes
//! them down with it, those made while it ran too ([`Store::leave_connected`]).
//! Both commands change the record under its record lock, which the end of
//! a run takes to record it: a connection is in the record the end reads,
//! or was never made.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use crate::container::Record;
use crate::error::{Context, Error, Result};
use crate::net::{self, connection, Connection};
use crate::network::Network;
use crate::store::Store;

impl Store {
    /// For a start of container `id`: prepares its connection on `on`
    /// (options `opts`, from [`Store::resolve_network`]) at slot `slot`,
    /// and puts it among `on`'s members, found by `names`.
    pub(crate) fn connect_prepared(
        &self,
        id: &str,
        opts: &net::Options,
        on: &Network,
        slot: u8,
        names: &[String],
    ) -> Result<net::Prepared> {
        let mut p = net::prepare_connection(&self.state_path(), id, opts, slot, &|other| {
            self.is_running(other)
        })?;
        let address = p.address().ok_or_else(|| {
            Error::msg(format!("connect {id} to network {}: no address", on.name))
        })?;
        match self.join_network(on, id, address, names) {
            Ok(member) => {
                p.set_member(member);
                Ok(p)
            }
            Err(e) => {
                let _ = net::release(p);
                Err(e)
            }
        }
    }

    /// At the end of a run of `record` (as stored: with what `network
    /// connect` added while it ran): takes it off the networks of its
    /// connections and frees the addresses it still holds there. Nothing
    /// for a container without connections.
    pub(crate) fn leave_connected(&self, record: &Record) {
        let Some(settings) = record.network.as_ref().filter(|n| !n.connected.is_empty()) else {
            return;
        };
        for c in &settings.connected {
            let _ = self.leave_network_dead(&c.network, &record.id);
        }
        let _ = net::release_dead(&self.state_path(), &record.id);
    }

    /// `network connect [--ip IP] [--alias NAME]... NETWORK CONTAINER`:
    /// puts container `container` on user-defined network `network`, as
    /// the module doc says. Returns the network's name.
    pub fn connect_network(
        &self,
        network: &str,
        container: &str,
        ip: Option<Ipv4Addr>,
        aliases: &[String],
    ) -> Result<String> {
        let what = format!("network connect {network} {container}");
        if crate::network::is_mode(network) {
            return Err(Error::msg(format!(
                "{what}: {network} is a --net mode: only user-defined networks (network create) are connected"
            )));
        }
        let (_lock, mut rec) = self.record_for_network(container, &what)?;
        let shown = rec.name.clone().unwrap_or_else(|| rec.id.clone());
        let mut settings = rec.network.clone().unwrap_or_default();
        if settings.mode != "bridge" {
            return Err(Error::msg(format!(
                "{what}: container {shown} has --net {}: only a container of a bridge network is put on more networks",
                settings.mode
            )));
        }
        let asked = net::Options {
            network: Some(network.to_string()),
            ip,
            aliases: aliases.to_vec(),
            ..net::Options::default()
        };
        let (opts, on) = self
            .resolve_network(&asked)
            .map_err(|e| Error::msg(format!("{what}: {}", e.what())))?;
        if settings.networks().any(|n| n == on.name) {
            return Err(Error::msg(format!(
                "{what}: container {shown} is on network {} already",
                on.name
            )));
        }
        let c = Connection {
            network: on.name.clone(),
            aliases: aliases.to_vec(),
            requested_address: ip.map(|a| a.to_string()),
            ..Connection::default()
        };
        let mut all = settings.connected.clone();
        all.push(c.clone());
        connection::validate(settings.network.as_deref(), &all)
            .map_err(|e| Error::msg(format!("{what}: {}", e.what())))?;
        if self.is_running(&rec.id) {
            let used = settings
                .connected
                .iter()
                .filter_map(|c| c.interface.as_deref());
            let slot = connection::free_slot(used).ok_or_else(|| {
                Error::msg(format!("{what}: container {shown} has no interface left"))
            })?;
            let [ns] = self.namespaces_of(&rec, ["net"], &what)?;
            let names: Vec<String> = rec
                .name
                .iter()
                .chain(aliases)
                .chain(std::iter::once(&rec.id))
                .cloned()
                .collect();
            let p = self.connect_prepared(&rec.id, &opts, &on, slot, &names)?;
            let root = crate::fsutil::open_dir(self.containers.as_fd(), rec.id.as_str())
                .context(|| format!("{what}: open containers/{}", rec.id));
            let made = root.and_then(|root| {
                net::attach(&p, ns.as_fd())?;
                net::write_connection_hosts(root.as_fd(), &p)
            });
            if let Err(e) = made {
                let _ = net::detach(p);
                return Err(e);
            }
            settings.connected.push(p.connection_settings(&c));
            rec.network = Some(settings);
            // Unrecorded, the end of its run would not take it down.
            if let Err(e) = self.write_record(&rec) {
                let _ = net::detach(p);
                return Err(e);
            }
            // It runs on with the connection, until its end releases it.
            drop(p);
            return Ok(on.name);
        }
        settings.connected.push(c);
        rec.network = Some(settings);
        self.write_record(&rec)?;
        Ok(on.name)
    }

    /// `network disconnect NETWORK CONTAINER`: takes container `container`
    /// off network `network`, which `network connect` put it on (not its
    /// first network: see docs/decisions.md). Returns the network's name.
    pub fn disconnect_network(&self, network: &str, container: &str) -> Result<String> {
        let what = format!("network disconnect {network} {container}");
        if crate::network::is_mode(network) {
            return Err(Error::msg(format!(
                "{what}: {network} is a --net mode, a container's first network, which stays"
            )));
        }
        let (_lock, mut rec) = self.record_for_network(container, &what)?;
        let shown = rec.name.clone().unwrap_or_else(|| rec.id.clone());
        let mut settings = rec.network.clone().unwrap_or_default();
        // By name, else (a network that still exists) by its ID.
        let name = match settings.networks().any(|n| n == network) {
            true => network.to_string(),
            false => {
                let asked = net::Options {
                    network: Some(network.to_string()),
                    ..net::Options::default()
                };
                self.resolve_network(&asked)
                    .map_err(|e| Error::msg(format!("{what}: {}", e.what())))?
                    .1
                    .name
            }
        };
        if settings.network.as_deref() == Some(name.as_str()) {
            return Err(Error::msg(format!(
                "{what}: network {name} is the one container {shown} was made on (--net {name}); \
                 only a network that network connect added can be taken away"
            )));
        }
        let Some(i) = settings.connected.iter().position(|c| c.network == name) else {
            return Err(Error::msg(format!(
                "{what}: container {shown} is not connected to network {name}"
            )));
        };
        let c = settings.connected.remove(i);
        if self.is_running(&rec.id) {
            // Its name goes from the others' /etc/hosts, theirs from its,
            // then its interface and address.
            self.leave_network_dead(&name, &rec.id)?;
            if let Ok(root) = crate::fsutil::open_dir(self.containers.as_fd(), rec.id.as_str()) {
                let _ = net::etc::replace_network_section(root.as_fd(), &rec.id, &name, "");
            }
            net::disconnect(&self.state_path(), &rec.id, &c)
                .map_err(|e| Error::msg(format!("{what}: {}", e.what())))?;
        }
        rec.network = Some(settings);
        self.write_record(&rec)?;
        Ok(name)
    }

    /// Container `container`'s record as stored, under its record lock
    /// (held while the lock lives).
    fn record_for_network(
        &self,
        container: &str,
        what: &str,
    ) -> Result<(std::os::fd::OwnedFd, Record)> {
        let gone = || Error::msg(format!("{what}: no such container: {container}"));
        let rec = self
            .find_container(container)
            .map_err(|e| Error::msg(format!("{what}: {}", e.what())))?;
        let lock = self.lock_record(&rec.id).ok_or_else(gone)?;
        // Again, under the lock: it may have been removed meanwhile.
        let rec = self.read_stored(&rec.id).ok_or_else(gone)?;
        Ok((lock, rec))
    }
}
