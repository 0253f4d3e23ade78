//! Fuzz target `session_bytes`: arbitrary packets at the server's stateless
//! front door (cookie) and at a client session, built once from the
//! throwaway test PKI.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use vpn_daemon::fuzzing::SessionTarget;

const PKI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/openvpn-2.6.14/pki/"
);

fn target() -> &'static Mutex<SessionTarget> {
    static T: OnceLock<Mutex<SessionTarget>> = OnceLock::new();
    T.get_or_init(|| {
        let read = |f: &str| std::fs::read(format!("{PKI}{f}")).expect("test PKI present");
        let (ca, sc, sk, cc, ck) = (
            read("ca.crt"),
            read("server.crt"),
            read("server.key"),
            read("client.crt"),
            read("client.key"),
        );
        #[allow(clippy::disallowed_methods)] // a fuzz harness, not protocol code
        let start = std::time::Instant::now();
        Mutex::new(
            SessionTarget::new(&ca, (&sc, &sk), (&cc, &ck), start).expect("session target builds"),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(mut t) = target().lock() {
        t.feed(data);
    }
});
