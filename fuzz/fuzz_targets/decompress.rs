//! Fuzz target `decompress`: see `vpn_daemon::fuzzing::decompress` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::decompress(data);
});
