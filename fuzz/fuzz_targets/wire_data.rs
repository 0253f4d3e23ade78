//! Fuzz target `wire_data`: see `vpn_daemon::fuzzing::wire_data` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::wire_data(data);
});
