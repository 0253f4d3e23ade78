//! Embeds the XDP object when `cargo xtask build-ebpf` has produced it, and
//! compiles the plugin ABI's C logging shim.
//!
//! Never builds BPF code itself: `cargo check`, `clippy` and `test` of the
//! daemon must work on a machine without the BPF toolchain. Without an
//! object the daemon is built with `EMBEDDED_OBJECT = None` and runs the plain
//! socket path (or loads an object given at run time).

use std::{env, fs, path::PathBuf};

fn main() {
    // The varargs logging callbacks of the plugin ABI (see the file).
    println!("cargo:rerun-if-changed=src/plugin/shim.c");
    cc::Build::new()
        .file("src/plugin/shim.c")
        .warnings(true)
        .compile("vpn_plugin_shim");
    println!("cargo:rerun-if-env-changed=VPN_EBPF_OBJECT");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let obj = match env::var_os("VPN_EBPF_OBJECT") {
        Some(p) => PathBuf::from(p),
        None => {
            // Watch the BPF crate's directory (its target/ included) so the
            // object appearing or changing re-runs this script; a watched path
            // that does not exist would re-run it on every build.
            let dir = manifest.join("../vpn-ebpf");
            println!("cargo:rerun-if-changed={}", dir.display());
            dir.join("target/bpfel-unknown-none/release/vpn-ebpf")
        }
    };
    let dst = out.join("vpn-ebpf.o");
    if obj.is_file() {
        println!("cargo:rerun-if-changed={}", obj.display());
        fs::copy(&obj, &dst).expect("copy the BPF object into OUT_DIR");
        println!("cargo:rustc-cfg=vpn_ebpf_embedded");
    } else {
        let _ = fs::remove_file(&dst);
    }
}
