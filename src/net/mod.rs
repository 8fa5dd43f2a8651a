//! The container network over raw netlink (in progress).
mod msg;
mod nl;
