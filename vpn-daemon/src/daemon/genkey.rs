//! `--genkey TYPE [FILE]`: write a new key in OpenVPN 2.6's formats and
//! exit (init.c `do_genkey`). Files are created mode 0600 and replaced if
//! they exist; without a file the key goes to standard output.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use base64::Engine as _;

use crate::config::{GenKey, GenKeyKind, Source};
use crate::error::DaemonError;
use crate::proto::keys::Key2;
use crate::proto::wire::tls_crypt::{Metadata, TlsCryptV2ServerKey, pem_encode};

/// Writes the key `g` asks for; the line to print afterwards, if any.
pub fn run(g: &GenKey) -> Result<Option<String>, DaemonError> {
    let key_err = |source| DaemonError::Key {
        what: "genkey",
        source,
    };
    let file = g.secret_file.as_ref().or(g.file.as_ref());
    match g.kind {
        GenKeyKind::Secret => {
            let text = Key2::generate().map_err(key_err)?.to_static_key_file();
            match file {
                // As 2.6: printf("%.*s\n"): one more newline on stdout.
                None => emit(None, &format!("{text}\n"))?,
                Some(p) => emit(Some(p), &text)?,
            }
            // 2.6 logs "Randomly generated 2048 bit key" only at verb 3+.
            if let Some(p) = file {
                tracing::debug!("Randomly generated 2048 bit key written to {}", p.display());
            }
            Ok(None)
        }
        GenKeyKind::TlsCryptV2Server => {
            emit(
                file.map(|p| p.as_path()),
                &TlsCryptV2ServerKey::generate_pem().map_err(key_err)?,
            )?;
            Ok(None)
        }
        GenKeyKind::AuthToken => {
            let mut raw = zeroize::Zeroizing::new([0u8; 128]);
            openssl::rand::rand_bytes(&mut raw[..]).map_err(|source| DaemonError::Random {
                what: "ERROR: could not generate random key",
                source,
            })?;
            emit(
                file.map(|p| p.as_path()),
                &pem_encode(&raw[..], "OpenVPN auth-token server key"),
            )?;
            Ok(None)
        }
        GenKeyKind::TlsCryptV2Client => {
            let text = match &g.tls_crypt_v2_server {
                Some(Source::Inline(t)) => t.clone(),
                Some(Source::File(p)) => std::fs::read_to_string(p).map_err(|e| {
                    DaemonError::io(
                        format!("reading tls-crypt-v2 server key {}", p.display()),
                        e,
                    )
                })?,
                None => {
                    return Err(DaemonError::GenKey(
                        "--genkey tls-crypt-v2-client requires a server key to be set via --tls-crypt-v2 to create a client key",
                    ));
                }
            };
            let server = TlsCryptV2ServerKey::from_pem(&text).map_err(key_err)?;
            let metadata = match &g.metadata {
                Some(b64) => Metadata::User(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|_| {
                            DaemonError::GenKey("ERROR: failed to base64 decode provided metadata")
                        })?,
                ),
                None => Metadata::Timestamp(crate::io::clock::unix_time()),
            };
            emit(
                file.map(|p| p.as_path()),
                &server.generate_client_pem(&metadata).map_err(key_err)?,
            )?;
            Ok(None)
        }
    }
}

fn emit(file: Option<&Path>, text: &str) -> Result<(), DaemonError> {
    match file {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| DaemonError::io("writing the key to standard output", e))
        }
        Some(p) => std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(p)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| DaemonError::io(format!("writing key file {}", p.display()), e)),
    }
}
