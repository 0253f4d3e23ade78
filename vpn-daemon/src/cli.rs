//! The command line as clap describes it, for `--help` and the man page;
//! the arguments themselves are parsed by [`crate::config::Config::from_args`].

use clap::{Arg, Command};

/// The help text's command description (clap renders it; it parses
/// nothing). The man page is generated from it (`examples/manpage.rs`).
pub fn command() -> Command {
    Command::new("vpn-daemon")
        .version(env!("CARGO_PKG_VERSION"))
        .about("OpenVPN 2.6 compatible VPN daemon with an XDP/AF_XDP fast path")
        .override_usage(
            "vpn-daemon --config FILE [--DIRECTIVE [ARGS...]]...\n       vpn-daemon FILE",
        )
        .arg(
            Arg::new("check-config")
                .long("check-config")
                .action(clap::ArgAction::SetTrue)
                .help("Parse and validate the configuration, print a summary, start nothing"),
        )
        .arg(
            Arg::new("config").long("config").value_name("FILE").help(
                "Read OpenVPN directives from FILE (may be repeated; files nest with 'config')",
            ),
        )
        .after_help(
            "Every OpenVPN directive of the configuration file also works as --DIRECTIVE ARGS... \
             on the command line, in order: later directives override earlier ones. \
             Unknown or unsupported directives are errors. See docs/directives.md.",
        )
}
