//! `cargo xtask`: the project's own set-up, BPF build, test, demo and bench entry points.

// xtask times its own steps; the "no clock" rule is for the protocol core.
#![allow(clippy::disallowed_methods)]

mod build_ebpf;
mod demo;
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
    Demo,
    /// Build the XDP program (vpn-ebpf) for bpfel-unknown-none.
    BuildEbpf,
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
        Cmd::Demo => demo::run(),
        Cmd::BuildEbpf => build_ebpf::run().map(|_| ()),
        Cmd::Test { no_lint, args } => test::run(no_lint, &args),
    }
}
