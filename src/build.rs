//! Build script: links the `tupper` binary with the code a start runs first in
//! its text, and keeps the link map (issue 4, docs/performance.md "Peak RSS").
//!
//! `src/start-path.ld` (made by `tests/bench/start-path order`) puts those
//! input sections in an output section `.text.hot` before `.text`, so that a
//! start faults in few 64 KiB windows of the binary. The map (`tupper.map` in
//! this script's OUT_DIR) is what `tests/bench/start-path` traces the binary
//! with. Both concern the binary only; the library and the tests link as usual.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=src/start-path.ld");
    println!("cargo:rerun-if-changed=src/build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rustc-link-arg-bin=tupper=-Wl,-T,{dir}/src/start-path.ld");
    println!("cargo:rustc-link-arg-bin=tupper=-Wl,-Map={out}/tupper.map");
}
