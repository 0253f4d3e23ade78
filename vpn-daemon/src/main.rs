//! `vpn-daemon`: command-line entry point.

use anyhow::{Result, bail};
use clap::Parser;

/// OpenVPN 2.6 compatible VPN daemon.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// OpenVPN configuration file.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bpf = match vpn_daemon::io::xdp::EMBEDDED_OBJECT {
        Some(o) => format!("XDP object embedded ({} bytes)", o.len()),
        None => "no XDP object embedded".to_string(),
    };
    if args.config.is_some() {
        bail!("client and server modes are not implemented yet ({bpf})");
    }
    println!("vpn-daemon {} ({bpf})", env!("CARGO_PKG_VERSION"));
    Ok(())
}
