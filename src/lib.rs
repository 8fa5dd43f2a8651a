//! tupper: a Linux container runtime made of direct syscalls, ioctls and netlink
//! messages, on btrfs snapshots.
//!
//! The data flows CLI ([`cli`]) -> store ([`store`], [`image`], [`container`]:
//! btrfs subvolumes and snapshots) -> plan ([`plan`], pure) -> launcher ([`launch`]:
//! `clone3`, sync pipes) -> child ([`child`]: mounts, `pivot_root`, hostname,
//! `execve`), with the network set up by the parent over netlink ([`net`]).
//! [`run`] tells the whole story in one place.
//!
//! The binary is a thin layer over this library:
//!
//! ```no_run
//! let store = tupper::Store::open("/var/lib/tupper")?;
//! let spec = tupper::Spec {
//!     image: "busybox".into(),
//!     command: vec!["/bin/true".into()],
//!     remove: true,
//!     ..Default::default()
//! };
//! assert_eq!(store.run(&spec)?, 0);
//! # Ok::<(), tupper::Error>(())
//! ```
//!
//! A [`Store`] may be shared by threads: each `run` is independent.

pub mod capabilities;
pub mod cgroup;
pub mod child;
pub mod cli;
pub mod connect;
pub mod container;
pub mod cp;
pub mod device;
pub mod diff;
pub mod disk_usage;
pub mod error;
pub mod events;
pub mod exec;
pub mod extract;
pub mod filter;
pub mod freezer;
pub mod fsutil;
pub mod health;
pub mod image;
pub mod image_archive;
pub mod image_config;
pub mod info;
pub mod ipc;
pub mod launch;
pub mod logfile;
pub mod loopstore;
pub mod named_volume;
pub mod names;
pub mod net;
pub mod netns_pool;
pub mod network;
pub mod pidns;
pub mod plan;
pub mod pool;
pub mod restart;
pub mod run;
pub mod seccomp;
pub mod seccomp_profile;
pub mod stats;
pub mod store;
pub mod syscall_names;
pub mod sysctl;
pub mod template;
pub mod terminal;
pub mod timefmt;
pub mod top;
pub mod ulimit;
pub mod update;
pub mod user;
pub mod userns;
pub mod volume;

pub use container::{Record, Status};
pub use error::{Error, Kind, Result};
pub use image::{ImageInfo, Source};
pub use launch::Stdio;
pub use run::{Container, Spec};
pub use store::Store;
