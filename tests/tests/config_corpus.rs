//! The acceptance test of the drop-in promise on configurations written by
//! others: every file of `testdata/corpus` (OpenVPN's samples, installers'
//! and container images' output, admin-UI exports, providers' profiles) is
//! given to stock openvpn 2.6 and to `vpn-daemon --check-config`. Every
//! file openvpn accepts must be accepted by us; every file it refuses must
//! be refused by us too, except the files of [`KNOWN_GAPS`], which belong
//! to open issues (what the drop-in issue still lists as remaining) and
//! must still be refused (so the list stays true).
//!
//! openvpn has no check-only mode: it runs in a fresh network namespace and
//! is judged by [`tests::corpus::openvpn_verdict`] (accepted once it prints
//! a line that only comes after option parsing and key loading, or is still
//! running after a deadline; refused when it exits before). The files run
//! in parallel, a few at a time.
//!
//! Needs root, `/usr/sbin/openvpn` and the daemon binary.

use std::{
    collections::BTreeMap,
    fs,
    path::Path,
    sync::{Mutex, atomic::AtomicUsize, atomic::Ordering},
};

use tests::corpus::{
    CorpusPki, Verdict, corpus_files, openvpn_verdict, ours_all_refusals, ours_verdict,
};
use tests::topology::TempDir;
use tests::{Netns, require_root};

/// Files refused for reasons that belong to other open issues: (file,
/// directive, issue). The test fails if one of them is accepted, or if we
/// refuse it for anything else as well (that part is an ordinary
/// disagreement).
const KNOWN_GAPS: &[(&str, &str, &str)] = &[
    // Still open in the drop-in issue itself (listed there as remaining).
    (
        "pfsense-export-archive-files.ovpn",
        "passtos",
        "drop-in issue, not built yet: per-datagram TOS in the batched sends",
    ),
    (
        "provider-vpnarea.ovpn",
        "passtos",
        "drop-in issue, not built yet: per-datagram TOS in the batched sends",
    ),
    (
        "pivpn-server-ec-tls-crypt-v2.conf",
        "tls-crypt-v2-verify",
        "drop-in issue, not built yet: the script before the handshake",
    ),
];

/// How many openvpn checks run at once (2 shared cores; the checks mostly
/// wait).
const PARALLEL: usize = 6;

struct Row {
    file: String,
    openvpn: Verdict,
    ours: Verdict,
    /// Every refusal of ours on the file, not only the first.
    all_refusals: Vec<String>,
}

#[test]
fn corpus_openvpn_accepts_we_accept() {
    if !require_root() {
        return;
    }
    let files = corpus_files();
    assert!(
        files.len() >= 100,
        "the corpus should hold at least 100 files, found {}",
        files.len()
    );
    let tmp = TempDir::new("corpus");
    let pki = CorpusPki::new(&tmp.path().join("pki"));
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Row>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let dir_name = file
                        .file_name()
                        .map_or_else(|| format!("f{i}"), |s| s.to_string_lossy().into_owned());
                    let row = check_one(&pki, file, &tmp.path().join(dir_name));
                    rows.lock().unwrap_or_else(|p| p.into_inner()).push(row);
                }
            });
        }
    });
    let mut rows = rows.into_inner().unwrap_or_else(|p| p.into_inner());
    rows.sort_by(|a, b| a.file.cmp(&b.file));
    assert_eq!(rows.len(), files.len(), "every file was checked");

    let gaps: BTreeMap<&str, (&str, &str)> =
        KNOWN_GAPS.iter().map(|(f, d, r)| (*f, (*d, *r))).collect();
    let total = rows.len();
    let ours_ok = rows.iter().filter(|r| r.ours.accepted()).count();
    let ovpn_ok = rows.iter().filter(|r| r.openvpn.accepted()).count();
    let mut failures = Vec::new();
    let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    println!("\n== corpus: {total} files ==");
    for r in &rows {
        let mark = match (r.openvpn.accepted(), r.ours.accepted()) {
            (true, true) => "both accept",
            (false, false) => "both refuse",
            (true, false) => "OURS REFUSES",
            (false, true) => "OURS ACCEPTS",
        };
        if r.all_refusals.is_empty() {
            println!("{:<48} {mark}", r.file);
        } else {
            let what: Vec<String> = r.all_refusals.iter().map(|m| short_reason(m)).collect();
            println!("{:<48} {mark:<13} ours: {}", r.file, what.join(", "));
        }
        for why in &r.all_refusals {
            reasons.entry(why.clone()).or_default().push(r.file.clone());
        }
        let agree = r.openvpn.accepted() == r.ours.accepted();
        match gaps.get(r.file.as_str()) {
            Some((d, why)) => {
                if r.ours.accepted() {
                    failures.push(format!(
                        "{}: listed as a known gap ({d}: {why}) but now accepted: remove it \
                         from KNOWN_GAPS",
                        r.file
                    ));
                } else {
                    // Only the listed directive may be refused: anything else
                    // in the file is an ordinary disagreement.
                    let others: Vec<&String> = r
                        .all_refusals
                        .iter()
                        .filter(|m| !m.contains(&format!("'{d}'")))
                        .collect();
                    if !others.is_empty() || r.all_refusals.is_empty() {
                        failures.push(format!(
                            "{}: listed as a known gap for '{d}', but we also refuse it for: {}",
                            r.file,
                            others
                                .iter()
                                .map(|m| m.as_str())
                                .collect::<Vec<_>>()
                                .join(" | ")
                        ));
                    }
                }
                if !r.openvpn.accepted() {
                    failures.push(format!(
                        "{}: listed as a known gap but openvpn refuses it too: {}",
                        r.file,
                        r.openvpn.message()
                    ));
                }
            }
            None if !agree => failures.push(format!(
                "{}: openvpn {} ({}); ours {} ({})",
                r.file,
                word(&r.openvpn),
                r.openvpn.message(),
                word(&r.ours),
                r.ours.message()
            )),
            None => {}
        }
    }
    for (f, _, _) in KNOWN_GAPS {
        if !rows.iter().any(|r| r.file == *f) {
            failures.push(format!("{f}: listed in KNOWN_GAPS but not in the corpus"));
        }
    }
    println!("\nopenvpn 2.6.14 accepted {ovpn_ok} of {total}");
    println!("accepted {ours_ok} of {total} (ours)");
    println!("\nrefused by openvpn (kept: we must refuse them too):");
    for r in rows.iter().filter(|r| !r.openvpn.accepted()) {
        println!(
            "  {}: openvpn: {} | ours: {}",
            r.file,
            r.openvpn.message(),
            r.ours.message()
        );
    }
    println!("\nknown gaps (other issues):");
    for (f, d, why) in KNOWN_GAPS {
        let ours = rows
            .iter()
            .find(|r| r.file == *f)
            .map_or("not in the corpus", |r| r.ours.message());
        println!("  {f}: {d}: {why} | ours: {ours}");
    }
    let mut by_count: Vec<_> = reasons.into_iter().collect();
    by_count.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    println!(
        "\nour refusals by reason, every one in each file (most frequent first; \
         files openvpn accepts / all files):"
    );
    for (why, files) in &by_count {
        let ovpn_ok = files
            .iter()
            .filter(|f| rows.iter().any(|r| &r.file == *f && r.openvpn.accepted()))
            .count();
        println!("  {ovpn_ok:>3} / {:>3}  {why}", files.len());
    }
    println!("\ndisagreements ({}):", failures.len());
    for f in &failures {
        println!("  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} corpus files where we differ from openvpn 2.6 (see the list above)",
        failures.len()
    );
}

fn word(v: &Verdict) -> &'static str {
    if v.accepted() { "accepts" } else { "refuses" }
}

/// Materialises and judges one file in `dir`.
fn check_one(pki: &CorpusPki, file: &Path, dir: &Path) -> Row {
    let name = pki.materialise(file, dir);
    let ns = Netns::new("cc");
    let openvpn = openvpn_verdict(&ns, dir, &name);
    drop(ns);
    let ours = ours_verdict(dir, &name);
    let all_refusals = if ours.accepted() {
        Vec::new()
    } else {
        ours_all_refusals(dir, &name, 40)
    };
    // A disagreeing file keeps its directory (config, keys, openvpn's
    // output) in the temp directory, which a failed run keeps.
    if openvpn.accepted() == ours.accepted()
        && let Err(e) = fs::remove_dir_all(dir)
    {
        eprintln!("remove {}: {e}", dir.display());
    }
    Row {
        file: name,
        openvpn,
        ours,
        all_refusals,
    }
}

/// `directive 'x' ...` as `x`, any other message as it is.
fn short_reason(msg: &str) -> String {
    msg.strip_prefix("directive '")
        .and_then(|r| r.split_once('\''))
        .map_or_else(|| msg.to_string(), |(d, _)| d.to_string())
}
