//! Fuzz target `tls_auth_unwrap`: see `vpn_daemon::fuzzing::tls_auth_unwrap` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::tls_auth_unwrap(data);
});
