//! `cargo xtask build-ebpf`: builds vpn-ebpf for `bpfel-unknown-none`.
//!
//! The BPF crate is its own workspace with its own lockfile and target dir,
//! built with the pinned [`BPF_TOOLCHAIN`] and `RUSTC_BOOTSTRAP=1` (needed for
//! `-Z build-std=core`), set only for this nested cargo so the host build cache
//! is never invalidated.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result};

use crate::{
    setup::{self, BPF_TOOLCHAIN},
    util::{exec, root},
};

/// Where the object lands.
pub(crate) fn object_path() -> PathBuf {
    root().join("vpn-ebpf/target/bpfel-unknown-none/release/vpn-ebpf")
}

pub(crate) fn run() -> Result<PathBuf> {
    setup::ensure()?;
    let dir = root().join("vpn-ebpf");
    let mut cmd = Command::new("rustup");
    cmd.current_dir(&dir)
        .args(["run", BPF_TOOLCHAIN, "cargo", "build", "--release"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .env("RUSTC_BOOTSTRAP", "1");
    // The outer `cargo run` exports its own toolchain and flags; any of them
    // leaking into the nested build mixes host and BPF settings.
    for var in [
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MANIFEST_DIR",
    ] {
        cmd.env_remove(var);
    }
    // BTF for the program (func and line info): verifier logs then name the
    // Rust source line, and bpftool can show the maps' types.
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Clink-arg=--btf");
    exec(&mut cmd)?;
    let obj = object_path();
    let size = std::fs::metadata(&obj)
        .with_context(|| format!("the build succeeded but {} is missing", obj.display()))?
        .len();
    println!("{} ({size} bytes)", obj.display());
    Ok(obj)
}
