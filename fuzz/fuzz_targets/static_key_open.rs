//! Fuzz target `static_key_open`: see `vpn_daemon::fuzzing::static_key_open` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::static_key_open(data);
});
