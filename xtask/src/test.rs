//! `cargo xtask test`: the whole suite, as CI runs it.
//!
//! Order: set-up if incomplete, the BPF object (so the daemon embeds it and
//! the BPF tests can load it), rustfmt, clippy with warnings denied, then every
//! test of the workspace: unit and property tests, BPF_PROG_TEST_RUN tests,
//! and the network-namespace integration tests (root). The Debian package
//! is built once before an unfiltered run (one release build) and handed
//! to the package test as `VPN_DEB`.

use std::process::Command;

use anyhow::Result;

use crate::{
    build_ebpf, package, setup,
    util::{exec, root},
};

fn cargo(obj: &std::path::Path) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(root()).env("VPN_EBPF_OBJECT", obj);
    c
}

pub(crate) fn run(no_lint: bool, args: &[String]) -> Result<()> {
    setup::ensure()?;
    let obj = build_ebpf::run()?;
    if !no_lint {
        exec(cargo(&obj).args(["fmt", "--all", "--check"]))?;
        exec(cargo(&obj).args(["fmt", "--check", "--manifest-path", "vpn-ebpf/Cargo.toml"]))?;
        exec(cargo(&obj).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    let mut test = cargo(&obj);
    // A filtered run (`-- NAME`) skips the release build; the package
    // test then takes the newest .deb in target/debian/ or builds one.
    if args.is_empty() {
        test.env("VPN_DEB", package::run(Some(&obj))?);
    }
    exec(
        test.args(["test", "--workspace", "--no-fail-fast"])
            .args(args),
    )?;
    Ok(())
}
