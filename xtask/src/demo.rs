//! `cargo xtask demo`: shows what the project does today, with real traffic
//! between network namespaces it creates and removes.
//!
//! Until the client/server drivers land, the demo is the XDP classifier at
//! work: two namespaces joined by a veth pair, vpn-ebpf attached in native
//! mode, an AF_XDP socket receiving an established peer's P_DATA_V2 packets
//! while control packets reach an ordinary UDP socket, and the counters.

use std::process::Command;

use anyhow::Result;

use crate::{
    build_ebpf, setup,
    util::{exec, root},
};

pub(crate) fn run() -> Result<()> {
    setup::ensure()?;
    let obj = build_ebpf::run()?;
    exec(
        Command::new("cargo")
            .current_dir(root())
            .env("VPN_EBPF_OBJECT", &obj)
            .env("VPN_DEMO", "1")
            .args([
                "test",
                "-p",
                "tests",
                "--test",
                "xdp_netns",
                "--",
                "--nocapture",
            ])
            .arg("--test-threads=1"),
    )
}
