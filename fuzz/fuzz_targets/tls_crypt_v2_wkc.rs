//! Fuzz target `tls_crypt_v2_wkc`: see `vpn_daemon::fuzzing::tls_crypt_v2_wkc` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::tls_crypt_v2_wkc(data);
});
