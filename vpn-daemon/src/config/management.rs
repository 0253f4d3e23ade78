//! The typed settings of the management interface (`management`,
//! `management-client-user`, `management-client-group`) and 2.6's checks
//! of how they combine.

use std::path::PathBuf;

use super::Builder;
use super::ConfigError;
use super::expand::invalid;

/// Where the management interface listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `management HOST PORT`: the host is resolved when the listener
    /// starts, as 2.6 does.
    Tcp {
        /// An address or a host name.
        host: String,
        /// The TCP port.
        port: u16,
    },
    /// `management PATH unix`.
    Unix(PathBuf),
}

/// `management` and the directives that shape it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Management {
    /// `None` when there is no `management` directive.
    pub listen: Option<Listen>,
    /// The pw-file: its first line is the password.
    pub password_file: Option<PathBuf>,
    /// `management-client-user`: only this user may connect (unix).
    pub client_user: Option<String>,
    /// `management-client-group`: only this group may connect (unix).
    pub client_group: Option<String>,
}

/// 2.6's `options_postprocess_verify_ce` checks of the management options.
pub(super) fn check(b: &Builder) -> Result<(), ConfigError> {
    let m = &b.cfg.management;
    let modifiers = ["management-client-user", "management-client-group"];
    match &m.listen {
        None if modifiers.iter().any(|d| b.given(d)) => Err(invalid(
            b.latest_of(&modifiers),
            "--management is not specified, however one or more options which modify the behavior of --management were specified",
        )),
        Some(Listen::Tcp { .. }) if modifiers.iter().any(|d| b.given(d)) => Err(invalid(
            b.latest_of(&modifiers),
            "--management-client-(user|group) can only be used on unix domain sockets",
        )),
        _ => Ok(()),
    }
}
