//! `tupper update` (docker's): a container's resource limits changed. A
//! running container's cgroup gets the new values at once; one that had no
//! cgroup (it was started without limits, see [`crate::cgroup`]) gets one,
//! recorded before it is made, and its processes are moved into it as
//! `pause` moves them into its freezer. A container that is not running
//! keeps them for its next `start`.

use crate::cgroup::{Cgroup, Resources};
use crate::container::Status;
use crate::error::{Error, Result};
use crate::store::Store;

impl Store {
    /// Changes the limits of container `name_or_id` to those `given` (the
    /// others stay as they were). Fails, changing nothing, on a value
    /// docker refuses or a controller this host lacks.
    pub fn update_container(&self, name_or_id: &str, given: &Resources) -> Result<()> {
        let what = format!("update container {name_or_id}");
        let rec = self.find_container(name_or_id)?;
        let gone = || Error::msg(format!("no such container: {name_or_id}"));
        // PID 1, pinned before the record lock (looking at the run lock
        // opens the lock file, and closing it would drop the record lock).
        let pinned = match rec.status {
            Status::Running => self.pin_pid1(&rec.id),
            _ => None,
        };
        let _guard = self.lock_record(&rec.id).ok_or_else(gone)?;
        let mut stored = self.read_stored(&rec.id).ok_or_else(gone)?;
        let before = stored.resources.clone();
        let old = before.clone().unwrap_or_default();
        let merged = Resources {
            memory: given.memory.or(old.memory),
            memory_swap: given.memory_swap.or(old.memory_swap),
            memory_reservation: given.memory_reservation.or(old.memory_reservation),
            memory_swappiness: old.memory_swappiness,
            oom_kill_disable: old.oom_kill_disable,
            pids_limit: given.pids_limit.or(old.pids_limit),
            nano_cpus: given.nano_cpus.or(old.nano_cpus),
            cpu_period: given.cpu_period.or(old.cpu_period),
            cpu_quota: given.cpu_quota.or(old.cpu_quota),
            cpu_shares: given.cpu_shares.or(old.cpu_shares),
            cpuset_cpus: given.cpuset_cpus.clone().or(old.cpuset_cpus),
            cpuset_mems: given.cpuset_mems.clone().or(old.cpuset_mems),
            cgroup_parent: old.cgroup_parent,
            device_throttles: old.device_throttles,
        };
        merged.validate()?;
        // Ended meanwhile (its end is recorded under the lock we hold now),
        // or not running: the record only.
        let running = stored.status == Status::Running && pinned.is_some();
        if running && !merged.wanted() {
            return Ok(());
        }
        if running && stored.cgroups.is_empty() {
            let (pid1, _pin) = pinned.expect("running");
            let placement = crate::cgroup::place(&merged, &stored.id, false)?
                .ok_or_else(|| Error::msg(format!("{what}: no limit to set")))?;
            let dirs = placement.dirs();
            // With cgroup v2, `pause` may have made tupper/ID already, as its
            // freezer; its processes are there.
            if stored.freezer.as_ref().is_some_and(|f| dirs.contains(f)) {
                return Err(Error::msg(format!(
                    "{what}: `pause` made its cgroup v2 directory without limits; stop and start it to give it some"
                )));
            }
            stored.cgroups = dirs;
            stored.resources = Some(merged.clone());
            self.write_record(&stored)?;
            let made = match placement.make(&merged) {
                Ok(c) => c,
                Err(e) => {
                    stored.cgroups.clear();
                    stored.resources = before;
                    self.write_record(&stored)?;
                    return Err(e);
                }
            };
            // Processes moved in stay there, limited; what is left outside
            // after an error is moved by another `update`.
            return made.adopt(&|| self.members(&stored, pid1), &what);
        }
        if running {
            let cgroup = Cgroup::open(&stored.cgroups, &stored.id)?
                .ok_or_else(|| Error::msg(format!("{what}: its cgroup is gone")))?;
            cgroup.set_limits(&merged)?;
        }
        stored.resources = Some(merged).filter(Resources::wanted);
        self.write_record(&stored)
    }

    /// Gives container `name_or_id` restart policy `policy` (docker's
    /// `update --restart`): a running one's holder applies it when its
    /// command ends next. Refused for a `--rm` container.
    pub fn update_restart_policy(
        &self,
        name_or_id: &str,
        policy: crate::restart::Policy,
    ) -> Result<()> {
        let rec = self.find_container(name_or_id)?;
        let gone = || Error::msg(format!("no such container: {name_or_id}"));
        let _guard = self.lock_record(&rec.id).ok_or_else(gone)?;
        let mut stored = self.read_stored(&rec.id).ok_or_else(gone)?;
        if stored.remove && policy.restarts() {
            return Err(Error::msg(format!(
                "update container {name_or_id}: --restart {policy}: it is removed when it ends (--rm), so it cannot restart"
            )));
        }
        stored.restart = policy.restarts().then(|| policy.to_string());
        self.write_record(&stored)
    }
}
