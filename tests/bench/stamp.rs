//! `stamp COMMAND [ARG]...`: prints the wall clock (CLOCK_REALTIME, nanoseconds since
//! the epoch) on one line to stdout, then replaces itself with COMMAND.
//!
//! The scale benchmark puts this static binary into its image as `/stamp`: the host
//! notes the time just before it starts `tupper run`, the container prints the time
//! when its command began, and the difference is that container's start latency.
//! CLOCK_REALTIME is the same inside and outside (tupper makes no time namespace).
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", now.as_nanos());
    let _ = out.flush();
    drop(out);
    let mut args = std::env::args_os().skip(1);
    let Some(cmd) = args.next() else { return };
    let err = std::process::Command::new(&cmd).args(args).exec();
    eprintln!("stamp: exec {}: {err}", cmd.to_string_lossy());
    std::process::exit(127);
}
