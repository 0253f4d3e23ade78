//! Parsers of the status files the tests read: the server's version 2/3
//! rows (`HEADER`, `CLIENT_LIST`, `GLOBAL_STATS`, ...) keyed by the
//! `HEADER` row's column names, and the client's `OpenVPN STATISTICS`
//! block. Both accept what stock openvpn writes and what our daemon adds
//! (XDP rows and columns), so a test can tell one from the other.

use std::collections::BTreeMap;

/// One `CLIENT_LIST` row: column name (from its `HEADER` row) → field.
pub type ClientRow = BTreeMap<String, String>;

/// A parsed server status file (version 2 or 3).
#[derive(Debug, Default, Clone)]
pub struct ServerStatus {
    /// The `HEADER,CLIENT_LIST,...` column names, in order.
    pub client_columns: Vec<String>,
    /// Every `CLIENT_LIST` row.
    pub clients: Vec<ClientRow>,
    /// `GLOBAL_STATS` name → value, in file order.
    pub global: Vec<(String, String)>,
    /// Whether the final `END` row was there (the file is complete).
    pub complete: bool,
}

impl ServerStatus {
    /// Parses version 2 (`,`) or version 3 (TAB) text; the separator is
    /// the one after the first row's tag.
    pub fn parse(text: &str) -> Self {
        let sep = if text.starts_with("TITLE\t") {
            '\t'
        } else {
            ','
        };
        let mut s = Self::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split(sep).collect();
            match f.as_slice() {
                ["HEADER", "CLIENT_LIST", cols @ ..] => {
                    s.client_columns = cols.iter().map(|c| c.to_string()).collect();
                }
                ["CLIENT_LIST", fields @ ..] => {
                    s.clients.push(
                        s.client_columns
                            .iter()
                            .cloned()
                            .zip(fields.iter().map(|f| f.to_string()))
                            .collect(),
                    );
                }
                ["GLOBAL_STATS", name, value] => {
                    s.global.push((name.to_string(), value.to_string()));
                }
                ["END"] => s.complete = true,
                _ => {}
            }
        }
        s
    }

    /// A `GLOBAL_STATS` value as a number.
    pub fn global_u64(&self, name: &str) -> Option<u64> {
        self.global
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.parse().ok())
    }

    /// The `GLOBAL_STATS` rows whose name starts with `XDP `.
    pub fn xdp_rows(&self) -> Vec<(String, String)> {
        self.global
            .iter()
            .filter(|(n, _)| n.starts_with("XDP "))
            .cloned()
            .collect()
    }

    /// The client with `Common Name` `cn` (the first one).
    pub fn client(&self, cn: &str) -> Option<&ClientRow> {
        self.clients
            .iter()
            .find(|c| c.get("Common Name").map(String::as_str) == Some(cn))
    }
}

/// A numeric column of a client row.
pub fn column_u64(row: &ClientRow, column: &str) -> Option<u64> {
    row.get(column).and_then(|v| v.parse().ok())
}

/// A client's `OpenVPN STATISTICS` block: name → value, in file order.
#[derive(Debug, Default, Clone)]
pub struct ClientStatistics {
    /// Rows between the title and `END` (`Updated` included).
    pub rows: Vec<(String, String)>,
    /// Whether the final `END` row was there.
    pub complete: bool,
}

impl ClientStatistics {
    /// Parses the block; `None` when the text is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()?.trim_end() != "OpenVPN STATISTICS" {
            return None;
        }
        let mut s = Self::default();
        for line in lines {
            let line = line.trim_end();
            if line == "END" {
                s.complete = true;
                break;
            }
            if let Some((k, v)) = line.rsplit_once(',') {
                s.rows.push((k.to_string(), v.to_string()));
            }
        }
        Some(s)
    }

    /// A row's value as a number.
    pub fn u64(&self, name: &str) -> Option<u64> {
        self.rows
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.parse().ok())
    }

    /// The rows whose name starts with `XDP `.
    pub fn xdp_rows(&self) -> Vec<(String, String)> {
        self.rows
            .iter()
            .filter(|(n, _)| n.starts_with("XDP "))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &str = "TITLE,OpenVPN 2.6.14\nTIME,2026-11-25 16:44:55,1795625095\n\
HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher,XDP RX Packets,XDP RX Bytes,XDP TX Packets,XDP TX Bytes\n\
CLIENT_LIST,client,10.200.0.10:40000,10.8.0.2,,100,200,2026-11-25 16:44:55,1795625095,UNDEF,0,0,AES-256-GCM,7,700,8,800\n\
HEADER,ROUTING_TABLE,Virtual Address,Common Name,Real Address,Last Ref,Last Ref (time_t)\n\
GLOBAL_STATS,Max bcast/mcast queue length,0\nGLOBAL_STATS,XDP redirected,12\n\
GLOBAL_STATS,XDP dropped drop_unknown_peer,3\nGLOBAL_STATS,dco_enabled,0\nEND\n";

    #[test]
    fn server_v2_with_xdp_columns_and_rows() {
        let s = ServerStatus::parse(V2);
        assert!(s.complete);
        let c = s.client("client").expect("client row");
        assert_eq!(c.get("Real Address").unwrap(), "10.200.0.10:40000");
        assert_eq!(column_u64(c, "Peer ID"), Some(0));
        assert_eq!(column_u64(c, "XDP TX Bytes"), Some(800));
        assert_eq!(s.global_u64("XDP redirected"), Some(12));
        assert_eq!(s.global_u64("XDP dropped drop_unknown_peer"), Some(3));
        assert_eq!(s.xdp_rows().len(), 2);
    }

    #[test]
    fn server_v3_tabs() {
        let s = ServerStatus::parse(&V2.replace(',', "\t"));
        assert_eq!(s.global_u64("dco_enabled"), Some(0));
        assert_eq!(s.clients.len(), 1);
    }

    #[test]
    fn client_statistics() {
        let s = ClientStatistics::parse(
            "OpenVPN STATISTICS\nUpdated,2026-11-25 16:44:55\nTUN/TAP read bytes,5\nXDP redirected,9\nEND\n",
        )
        .expect("a block");
        assert!(s.complete);
        assert_eq!(s.u64("TUN/TAP read bytes"), Some(5));
        assert_eq!(s.xdp_rows(), vec![("XDP redirected".into(), "9".into())]);
        assert!(ClientStatistics::parse("TITLE,x\n").is_none());
    }
}
