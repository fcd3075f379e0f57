//! Checking a miners file before anything is imported: every entry the pipeline would always
//! reject is refused here, with the row and the reason, instead of failing the miner later.
//!
//! Per row: the hotkey is an SS58 address with a valid checksum; the store URL is accepted by
//! the miner-store transport itself (`https`, or `http` only when `data.allow_plain_http_miners`
//! is set; no credentials, query or fragment; an IP-literal host must pass the SSRF guard, and
//! `localhost` names are refused unless `data.allow_loopback_miners`); the token is printable
//! ASCII. Across rows: no uid and no hotkey twice, and no hotkey that another registered uid,
//! one this file does not replace, already has. Host names are vetted again at every connection
//! (DNS can change after the import).

use std::collections::BTreeMap;
use wx_data::manifest::ss58_decode;
use wx_data::transport::{BearerToken, HttpStoreConfig, TransportError, connect_miner_store};
use wx_steps::DataConfig;
use wx_store::MinerRecord;

/// What is wrong with one row of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// 1-based position in the file.
    pub row: usize,
    /// The row's uid as written.
    pub uid: i64,
    /// Every problem of the row, in words (never the token).
    pub problems: Vec<String>,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "row {} (uid {}): {}",
            self.row,
            self.uid,
            self.problems.join("; ")
        )
    }
}

/// The miner-store transport settings of this configuration (as the pipeline uses them).
pub fn transport_config(data: &DataConfig) -> HttpStoreConfig {
    let mut config = HttpStoreConfig::default();
    if data.allow_loopback_miners {
        config.address_policy = config.address_policy.allow_loopback();
    }
    config.allow_plain_http = data.allow_plain_http_miners;
    config.min_throughput = data.miner_throughput.rule();
    config
}

/// The store URL with its placeholders filled in, as the pipeline will request it.
fn example_url(template: &str) -> String {
    template
        .replace("{run_id}", "1")
        .replace("{init}", "2025010100")
}

fn check_url(record: &MinerRecord, transport: &HttpStoreConfig) -> Option<String> {
    let template = record.store_url.trim();
    let shown = wx_model::sanitize_message(template, &[&record.access_token]);
    let url = example_url(template);
    if let Err(e) = connect_miner_store(&url, None, transport) {
        let reason = match &e {
            TransportError::Forbidden { refused, .. } => refused.to_string(),
            other => other.to_string(),
        };
        let reason = wx_model::sanitize_message(&reason, &[&record.access_token]);
        return Some(format!("store_url `{shown}` is refused: {reason}"));
    }
    let host = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let loopback_name = host == "localhost" || host.ends_with(".localhost");
    if loopback_name
        && !transport
            .address_policy
            .allowed()
            .iter()
            .any(|net| net.contains(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)))
    {
        return Some(format!(
            "store_url `{shown}` names this machine ({host}); miner stores must be public (set data.allow_loopback_miners only for tests)"
        ));
    }
    None
}

fn check_row(record: &MinerRecord, transport: &HttpStoreConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if !(0..=255).contains(&record.uid) {
        problems.push(format!("uid {} is outside 0..=255", record.uid));
    }
    let hotkey = record.hotkey.trim();
    if let Err(reason) = ss58_decode(hotkey) {
        let shown: String = hotkey.chars().take(64).collect();
        problems.push(format!(
            "hotkey `{shown}` is not a valid SS58 address ({reason}); copy the miner's hotkey address exactly"
        ));
    }
    problems.extend(check_url(record, transport));
    if BearerToken::new(record.access_token.clone()).is_err() {
        problems.push(
            "access_token is empty or contains spaces or control characters (it must be printable ASCII); ask the miner for its token again"
                .to_owned(),
        );
    }
    problems
}

/// Checks every row of an import against the rules above; `registered` is the current
/// registry as (uid, hotkey). Empty when the import may go ahead.
pub fn check_import(
    records: &[MinerRecord],
    registered: &[(i32, String)],
    data: &DataConfig,
) -> Vec<RowProblem> {
    let transport = transport_config(data);
    let mut by_row: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut first_uid: BTreeMap<i64, usize> = BTreeMap::new();
    let mut first_hotkey: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, record) in records.iter().enumerate() {
        let row = index + 1;
        let mut problems = check_row(record, &transport);
        match first_uid.get(&record.uid) {
            Some(first) => problems.push(format!("uid {} is already on row {first}", record.uid)),
            None => {
                first_uid.insert(record.uid, row);
            }
        }
        let hotkey = record.hotkey.trim();
        match first_hotkey.get(hotkey) {
            Some(first) => problems.push(format!(
                "hotkey is already on row {first} (uid {}): one hotkey, one uid",
                records[first - 1].uid
            )),
            None => {
                first_hotkey.insert(hotkey, row);
            }
        }
        if !problems.is_empty() {
            by_row.insert(row, problems);
        }
    }
    // a hotkey registered to a uid this file leaves in place
    for (uid, hotkey) in registered {
        if first_uid.contains_key(&i64::from(*uid)) {
            continue;
        }
        if let Some(&row) = first_hotkey.get(hotkey.as_str()) {
            by_row.entry(row).or_default().push(format!(
                "hotkey is already registered to uid {uid}, which this file does not replace"
            ));
        }
    }
    by_row
        .into_iter()
        .map(|(row, problems)| RowProblem {
            row,
            uid: records[row - 1].uid,
            problems,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alice's well-known development key.
    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const BOB: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";

    fn record(uid: i64, hotkey: &str, url: &str, token: &str) -> MinerRecord {
        MinerRecord {
            uid,
            hotkey: hotkey.into(),
            store_url: url.into(),
            access_token: token.into(),
        }
    }

    fn problems(records: &[MinerRecord]) -> Vec<String> {
        check_import(records, &[], &DataConfig::default())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_file_passes() {
        assert!(
            problems(&[
                record(
                    1,
                    ALICE,
                    "https://m1.example/forecasts/{run_id}.zarr",
                    "tok-1"
                ),
                record(2, BOB, "https://203.0.114.9:8443/f/{init}.zarr", "tok-2"),
            ])
            .is_empty()
        );
    }

    #[test]
    fn each_rule_names_the_row_and_the_reason() {
        let mut corrupted = ALICE.to_owned();
        corrupted.replace_range(10..11, "x");
        let cases = [
            (
                record(1, "abc", "https://m.example/x", "t0k"),
                "not a valid SS58",
            ),
            (
                record(1, &corrupted, "https://m.example/x", "t0k"),
                "checksum mismatch",
            ),
            (record(1, ALICE, "http://m.example/x", "t0k"), "plain http"),
            (record(1, ALICE, "file:///srv/x.zarr", "t0k"), "scheme"),
            (record(1, ALICE, "/srv/x.zarr", "t0k"), "refused"),
            (
                record(1, ALICE, "https://169.254.169.254/x", "t0k"),
                "cloud metadata",
            ),
            (record(1, ALICE, "https://10.0.0.8/x", "t0k"), "private"),
            (record(1, ALICE, "https://127.0.0.1:9/x", "t0k"), "loopback"),
            (
                record(1, ALICE, "https://localhost:9/x", "t0k"),
                "names this machine",
            ),
            (
                record(1, ALICE, "https://m.example/x", "tok\u{7}en"),
                "printable ASCII",
            ),
            (record(1, ALICE, "https://m.example/x", ""), "access_token"),
            (record(300, ALICE, "https://m.example/x", "t0k"), "0..=255"),
        ];
        for (r, expected) in cases {
            let found = problems(std::slice::from_ref(&r));
            assert_eq!(found.len(), 1, "{r:?}: {found:?}");
            assert!(
                found[0].starts_with(&format!("row 1 (uid {}): ", r.uid))
                    && found[0].contains(expected),
                "{r:?}: {found:?}"
            );
            assert!(
                r.access_token.len() < 3 || !found[0].contains(&r.access_token),
                "the token never appears: {found:?}"
            );
        }
    }

    #[test]
    fn duplicates_are_refused_within_the_file_and_against_the_registry() {
        let found = problems(&[
            record(1, ALICE, "https://a.example/x", "t1"),
            record(1, BOB, "https://b.example/x", "t2"),
            record(3, ALICE, "https://c.example/x", "t3"),
        ]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("row 2 (uid 1): uid 1 is already on row 1"));
        assert!(found[1].contains("row 3 (uid 3): hotkey is already on row 1 (uid 1)"));

        let registered = vec![(7, ALICE.to_owned()), (8, BOB.to_owned())];
        let file = [
            record(1, ALICE, "https://a.example/x", "t1"),
            // uid 8 is replaced by this file: its old hotkey may move
            record(
                8,
                "5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy",
                "https://b.example/x",
                "t2",
            ),
            record(2, BOB, "https://c.example/x", "t3"),
        ];
        let found: Vec<String> = check_import(&file, &registered, &DataConfig::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("row 1 (uid 1): hotkey is already registered to uid 7"));
    }

    #[test]
    fn configuration_allows_plain_http_and_loopback_for_tests() {
        let data = DataConfig {
            allow_plain_http_miners: true,
            allow_loopback_miners: true,
            ..DataConfig::default()
        };
        let file = [record(1, ALICE, "http://127.0.0.1:9000/m1", "t0k")];
        assert!(check_import(&file, &[], &data).is_empty());
        let file = [record(1, ALICE, "http://localhost:9000/m1", "t0k")];
        assert!(check_import(&file, &[], &data).is_empty());
    }
}
