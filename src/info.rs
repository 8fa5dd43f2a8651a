//! `tupper info` (docker's `info`, `system info`): the store (its
//! filesystem's device, what it holds) and the host it runs on, with
//! docker's field names, so that `--format '{{.KernelVersion}}'` and the
//! like work as they do with docker. Read from the store's directories,
//! `uname(2)`, `sysinfo(2)`, `/proc/self/mountinfo`, the loop device's
//! `backing_file` in sysfs and `/etc/os-release`; nothing is written.

use std::os::fd::AsFd;

use crate::container::Status;
use crate::error::Result;
use crate::store::Store;

/// What `info` shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    /// Containers, in any state.
    pub containers: usize,
    /// Containers that run (paused ones included).
    pub containers_running: usize,
    /// Containers that run and are paused.
    pub containers_paused: usize,
    /// Containers that do not run (created, exited, dead).
    pub containers_stopped: usize,
    /// Images.
    pub images: usize,
    /// Named volumes (not docker's field).
    pub volumes: usize,
    /// User-defined networks (not docker's field).
    pub networks: usize,
    /// tupper's version.
    pub server_version: String,
    /// `btrfs`: every image, container and volume is a subvolume.
    pub driver: String,
    /// The store's filesystem: its device and, for a loop device, the file
    /// behind it; the spare snapshots ready in the pools.
    pub driver_status: Vec<[String; 2]>,
    /// `json-file`, the default `--log-driver`.
    pub logging_driver: String,
    /// `cgroupfs`: tupper writes the cgroup files itself.
    pub cgroup_driver: String,
    /// `1` or `2`: the layout of `/sys/fs/cgroup`.
    pub cgroup_version: String,
    /// What a container gets unless told otherwise (docker's form).
    pub security_options: Vec<String>,
    /// `uname -r`.
    pub kernel_version: String,
    /// `/etc/os-release`'s `PRETTY_NAME`.
    pub operating_system: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// `uname -m`.
    pub architecture: String,
    /// The CPUs this process may run on.
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    /// The host's memory, bytes.
    pub mem_total: u64,
    /// The host's name.
    pub name: String,
    /// The store's root directory (docker's field name).
    pub docker_root_dir: String,
}

impl Store {
    /// What `tupper info` shows of this store and the host.
    pub fn info(&self) -> Result<Info> {
        let containers = self.containers(true)?;
        let running = |r: &&crate::container::Record| r.status == Status::Running;
        let uname = rustix::system::uname();
        let text = |s: &std::ffi::CStr| s.to_string_lossy().into_owned();
        let sys = rustix::system::sysinfo();
        let mut driver_status = backing(self.root());
        driver_status.push(["Spare Snapshots".into(), self.spare_count().to_string()]);
        Ok(Info {
            containers: containers.len(),
            containers_running: containers.iter().filter(running).count(),
            containers_paused: containers
                .iter()
                .filter(running)
                .filter(|r| r.paused)
                .count(),
            containers_stopped: containers.iter().filter(|r| !running(r)).count(),
            images: self.images()?.len(),
            volumes: self.volumes()?.len(),
            networks: self.networks()?.len(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            driver: "btrfs".into(),
            driver_status,
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: match crate::cgroup::fs_magic("/sys/fs/cgroup") {
                Ok(m) if m == linux_raw_sys::general::CGROUP2_SUPER_MAGIC => "2".into(),
                _ => "1".into(),
            },
            security_options: vec!["name=seccomp,profile=builtin".into()],
            kernel_version: text(uname.release()),
            operating_system: os_release_name(
                &std::fs::read_to_string("/etc/os-release").unwrap_or_default(),
            ),
            os_type: "linux".into(),
            architecture: text(uname.machine()),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total: (sys.totalram as u64).saturating_mul(u64::from(sys.mem_unit.max(1))),
            name: text(uname.nodename()),
            docker_root_dir: self.root().display().to_string(),
        })
    }
}

/// The device the store at `root` is mounted from, and for a loop device the
/// file behind it (`Backing Device`, `Backing File`); nothing it cannot read.
fn backing(root: &std::path::Path) -> Vec<[String; 2]> {
    let Ok(fd) = crate::fsutil::open_dir(rustix::fs::CWD, root) else {
        return Vec::new();
    };
    let Ok(st) = rustix::fs::statx(
        fd.as_fd(),
        "",
        rustix::fs::AtFlags::EMPTY_PATH,
        rustix::fs::StatxFlags::MNT_ID,
    ) else {
        return Vec::new();
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(device) = mount_source(&mountinfo, st.stx_mnt_id) else {
        return Vec::new();
    };
    let mut out = vec![["Backing Device".to_string(), device.clone()]];
    if let Some(loop_name) = device.strip_prefix("/dev/") {
        let file = format!("/sys/block/{loop_name}/loop/backing_file");
        if let Ok(path) = std::fs::read_to_string(file) {
            out.push(["Backing File".to_string(), path.trim_end().to_string()]);
        }
    }
    out
}

/// The source of mount `id` in a `mountinfo` text.
fn mount_source(mountinfo: &str, id: u64) -> Option<String> {
    crate::fsutil::mount_info(mountinfo, id)?.source
}

/// `PRETTY_NAME` of an `os-release` text, its quotes taken off; `Linux`
/// when it has none.
fn os_release_name(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "Linux".to_string())
}

/// `info`'s text, as docker's lays its server part out.
pub fn text(i: &Info) -> String {
    let mut out = format!(
        "Containers: {}\n Running: {}\n Paused: {}\n Stopped: {}\nImages: {}\nVolumes: {}\nNetworks: {}\n",
        i.containers,
        i.containers_running,
        i.containers_paused,
        i.containers_stopped,
        i.images,
        i.volumes,
        i.networks
    );
    out += &format!(
        "Server Version: {}\nStorage Driver: {}\n",
        i.server_version, i.driver
    );
    for [key, value] in &i.driver_status {
        out += &format!(" {key}: {value}\n");
    }
    out += &format!(
        "Logging Driver: {}\nCgroup Driver: {}\nCgroup Version: {}\n",
        i.logging_driver, i.cgroup_driver, i.cgroup_version
    );
    out += "Plugins:\n Volume: local\n Network: bridge host none\n Log: json-file k8s-file local\n";
    out += "Security Options:\n";
    for opt in &i.security_options {
        for (n, part) in opt.split(',').enumerate() {
            let (key, value) = part.split_once('=').unwrap_or(("", part));
            let mut letters = key.chars();
            let key: String = letters
                .next()
                .into_iter()
                .flat_map(char::to_uppercase)
                .chain(letters)
                .collect();
            match n {
                0 => out += &format!(" {value}\n"),
                _ => out += &format!("  {key}: {value}\n"),
            }
        }
    }
    out += &format!(
        "Kernel Version: {}\nOperating System: {}\nOSType: {}\nArchitecture: {}\nCPUs: {}\nTotal Memory: {}\nName: {}\nRoot Dir: {}\n",
        i.kernel_version,
        i.operating_system,
        i.os_type,
        i.architecture,
        i.ncpu,
        crate::stats::binary_size(i.mem_total),
        i.name,
        i.docker_root_dir
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stores_device_is_read_from_mountinfo() {
        let mountinfo = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
512 22 7:3 / /var/lib/tupper rw,relatime shared:300 - btrfs /dev/loop3 rw,space_cache=v2
513 22 0:50 / /mnt/a\\040b rw - tmpfs my\\040tmp rw
";
        assert_eq!(mount_source(mountinfo, 512).as_deref(), Some("/dev/loop3"));
        assert_eq!(mount_source(mountinfo, 513).as_deref(), Some("my tmp"));
        assert_eq!(mount_source(mountinfo, 51), None);
    }

    #[test]
    fn the_systems_name_is_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(os_release_name(text), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os_release_name("PRETTY_NAME=Alpine\n"), "Alpine");
        assert_eq!(os_release_name("ID=x\n"), "Linux");
    }
}
