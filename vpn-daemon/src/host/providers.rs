//! `providers NAME...`: the OpenSSL 3 providers to load, as OpenVPN 2.6's
//! `crypto_load_provider` (BF-CBC, 2.6's static-key default, lives in
//! `legacy`; naming any provider replaces the implicit `default`, so
//! configurations write `providers legacy default`).

use openssl::provider::Provider;

use crate::config::Config;
use crate::error::DaemonError;

/// Loads every provider of `cfg`; they stay loaded while the value lives.
pub fn load(cfg: &Config) -> Result<Vec<Provider>, DaemonError> {
    let mut out = Vec::with_capacity(cfg.providers.len());
    for name in &cfg.providers {
        // A NUL cannot name a provider (and OpenSSL could not take it).
        if name.contains('\0') {
            return Err(DaemonError::Provider {
                name: name.clone(),
                detail: None,
            });
        }
        let p = Provider::try_load(None, name, true).map_err(|e| DaemonError::Provider {
            name: name.clone(),
            detail: Some(e.to_string()),
        })?;
        tracing::info!(provider = %name, "OpenSSL provider loaded");
        out.push(p);
    }
    Ok(out)
}
