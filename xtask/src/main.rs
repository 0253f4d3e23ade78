//! `cargo xtask`: the project's own set-up, BPF build, test, demo and bench entry points.

// xtask times its own steps; the "no clock" rule is for the protocol core.
#![allow(clippy::disallowed_methods)]

mod bench;
mod build_ebpf;
mod demo;
mod lab;
mod package;
mod setup;
mod test;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, test and run the VPN daemon")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the build and the tests need (idempotent; fast when done).
    Setup {
        /// Only report what is missing, change nothing.
        #[arg(long)]
        check: bool,
    },
    /// Demo with real traffic between network namespaces (needs root).
    Demo {
        /// Use the debug build of the daemon (quicker to build; its numbers
        /// are not representative, so the demo defaults to release).
        #[arg(long)]
        debug: bool,
    },
    /// Benchmark ours vs openvpn through network namespaces: iperf3 TCP and
    /// UDP, CPU per GB, ping RTT, time to first packet (needs root).
    Bench {
        /// Seconds per iperf3 run.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Use the debug build of the daemon (quicker to build, not representative).
        #[arg(long)]
        debug: bool,
    },
    /// Build the XDP program (vpn-ebpf) for bpfel-unknown-none.
    BuildEbpf,
    /// Build the Debian package (release daemon with the BPF object, man
    /// page, systemd units, samples) into target/debian/ with cargo-deb.
    Package,
    /// fmt, clippy, the BPF build and every test (unit, BPF, netns integration).
    Test {
        /// Skip fmt and clippy (quicker local iterations).
        #[arg(long)]
        no_lint: bool,
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Setup { check } => setup::run(check),
        Cmd::Demo { debug } => demo::run(!debug),
        Cmd::Bench { seconds, debug } => bench::run(seconds, !debug),
        Cmd::BuildEbpf => build_ebpf::run().map(|_| ()),
        Cmd::Package => package::run(None).map(|_| ()),
        Cmd::Test { no_lint, args } => test::run(no_lint, &args),
    }
}
