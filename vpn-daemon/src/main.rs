//! `vpn-daemon`: command-line entry point.
//!
//! The arguments are OpenVPN's: `--config FILE` and any directive as
//! `--name args...` (arguments run up to the next `--`), or a lone config
//! file name. That grammar is open-ended (every directive is a flag, each
//! with its own arity, and the order matters because later directives
//! override earlier ones and `--config` nests files in place), so clap
//! cannot own argv: the whole argument list goes to
//! [`vpn_daemon::config::Config::from_args`], which feeds the same
//! directive table as the files. clap only renders `--help`; `--help` and
//! `--version` act wherever they appear, as in OpenVPN.

use std::process::ExitCode;

use anyhow::{Context, Result};
use vpn_daemon::cli::command as help_command;
use vpn_daemon::config::Config;
use vpn_daemon::daemon::Outcome;

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| anyhow::anyhow!("argument {a:?} is not valid UTF-8"))
        })
        .collect::<Result<_>>()?;
    if args.is_empty() {
        help_command().print_help().context("printing help")?;
        return Ok(ExitCode::FAILURE);
    }
    // Like OpenVPN's own --help/--version, these act wherever they are.
    if args.iter().any(|a| a == "--help" || a == "-h") {
        help_command().print_long_help().context("printing help")?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("vpn-daemon {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    // OpenVPN's informational modes print and exit before anything else
    // is looked at.
    if let Some(m) = args
        .iter()
        .find_map(|a| vpn_daemon::daemon::info::Show::from_arg(a))
    {
        print!("{}", vpn_daemon::daemon::info::render(m));
        return Ok(ExitCode::SUCCESS);
    }
    // Our own flag (OpenVPN has none): parse and validate, print what would
    // run, start nothing. Like `nginx -t`, for checking a config before use.
    let check_only = args.iter().any(|a| a == "--check-config");
    let args: Vec<String> = args.into_iter().filter(|a| a != "--check-config").collect();
    let mut first = true;
    loop {
        let config = match Config::from_args(&args) {
            Ok(c) => c,
            Err(e) => {
                // file:line: message, nothing else, as OpenVPN users expect.
                eprintln!("{e}");
                vpn_daemon::host::notify::failed(&e);
                return Ok(ExitCode::FAILURE);
            }
        };
        for w in &config.warnings {
            eprintln!("{w}");
        }
        if let Some(m) = config.host.show {
            print!("{}", vpn_daemon::daemon::info::render(m));
            return Ok(ExitCode::SUCCESS);
        }
        // `--genkey`: write the key and leave, as OpenVPN does.
        if let Some(g) = &config.genkey {
            match vpn_daemon::daemon::genkey::run(g) {
                Ok(Some(line)) => eprintln!("{line}"),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("vpn-daemon: {e}");
                    return Ok(ExitCode::FAILURE);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        if check_only {
            println!("{}", config.summary());
            return Ok(ExitCode::SUCCESS);
        }
        if first {
            if let Err(e) = vpn_daemon::daemon::prepare_process(&config) {
                vpn_daemon::host::notify::failed(&e);
                return Err(e).context("process set-up");
            }
            first = false;
        }
        tracing::info!("{}", config.summary());
        match vpn_daemon::daemon::run(&config) {
            Ok(Outcome::Exit(code)) => return Ok(ExitCode::from(code)),
            Ok(Outcome::Reload) => {
                tracing::info!("SIGHUP: re-reading the configuration and restarting");
            }
            Err(e) => {
                tracing::error!("{e:#}");
                eprintln!("vpn-daemon: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
}
