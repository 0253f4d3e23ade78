//! Fuzz target `proxy_reply`: what an HTTP or SOCKS5 proxy may answer a
//! `tcp-client` (`vpn_daemon::io::external::proxy`): the HTTP reply head check
//! and the SOCKS5 CONNECT reply length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vpn_daemon::io::external::proxy::{parse_http_reply, socks5_reply_rest};

fuzz_target!(|data: &[u8]| {
    let _ = parse_http_reply(data);
    let mut head = [0u8; 5];
    for (d, s) in head.iter_mut().zip(data) {
        *d = *s;
    }
    let _ = socks5_reply_rest(head);
});
