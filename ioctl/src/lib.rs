#![allow(unsafe_code)]
//! btrfs and loop-device ioctls for tupper, with safe wrappers.
//!
//! This crate is the one place in tupper that issues btrfs and loop-device
//! `ioctl`s. Every function takes borrowed file descriptors, checks its
//! inputs against the kernel's limits and returns a plain [`std::io::Result`];
//! the caller adds which operation on which object failed.
//!
//! - [`btrfs`]: create, snapshot, delete and inspect subvolumes; enable
//!   quotas and limit a subvolume's.
//! - [`loop_device`]: attach a file to a free `/dev/loopN` and detach it.
//!
//! # Safety
//!
//! The workspace denies `unsafe_code`; this crate opts back in because an
//! `ioctl` is a contract the compiler cannot check. The contract is kept in
//! three ways:
//!
//! - Every argument struct comes from `linux-raw-sys` (never hand-copied),
//!   and its size is checked at compile time, both against the number the
//!   kernel headers give and against the size encoded in the opcode.
//! - Every call goes through one of rustix's typed patterns (`Setter`,
//!   `Getter`, `Updater`, `NoArg`, `IntegerSetter`) or one small `Ioctl` impl, so the
//!   pointer handed to the kernel always points at a live, fully initialised
//!   value of exactly the type the opcode names, owned by the caller's stack
//!   frame for the whole call.
//! - Each `unsafe` block carries a `// SAFETY:` comment naming the struct,
//!   its size and who owns the buffer.
//!
//! Nothing here starts another program.

pub mod btrfs;
pub mod loop_device;

pub use btrfs::{
    format_uuid, is_btrfs, is_subvolume_root, qgroup_limit_exclusive, qgroup_usage,
    quota_enable_simple, set_subvol_readonly, snapshot, subvol_create, subvol_destroy,
    subvol_flags, subvol_info, QgroupUsage, SubvolInfo,
};
pub use loop_device::{loop_attach, loop_backing_file, loop_detach, LoopDevice};
