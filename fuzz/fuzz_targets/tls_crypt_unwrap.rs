//! Fuzz target `tls_crypt_unwrap`: see `vpn_daemon::fuzzing::tls_crypt_unwrap` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::tls_crypt_unwrap(data);
});
