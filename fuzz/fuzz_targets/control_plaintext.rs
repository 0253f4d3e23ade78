//! Fuzz target `control_plaintext`: see `vpn_daemon::fuzzing::control_plaintext` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::control_plaintext(data);
});
