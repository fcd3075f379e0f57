//! NOAA `.idx` inventories (wgrib2 `-s` format) and the byte ranges of their messages.
//!
//! A line reads `n:offset:d=YYYYMMDDHH:VAR:LEVEL:FCST:` (more fields may follow). A message
//! holding several fields is listed once per field as `n.1`, `n.2`, … with the same offset.
//! The bytes of message `n` run from its offset to the next message's offset − 1; the last
//! message runs to the end of the file.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Largest `.idx` accepted (a real 0.25° GFS inventory is about 60 KB).
pub const MAX_IDX_BYTES: usize = 4 * 1024 * 1024;
/// Largest number of lines accepted.
pub const MAX_IDX_LINES: usize = 100_000;

/// A `.idx` file that cannot be used: the line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct IdxError {
    /// 1-based line number (0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// One field of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxEntry {
    /// The message number `n`.
    pub message: u32,
    /// The field number within the message (`n.k`), `None` for single-field lines.
    pub field: Option<u32>,
    /// Byte offset of the message in the GRIB file.
    pub offset: u64,
    /// Reference time of the field (`d=YYYYMMDDHH`).
    pub reference_time: DateTime<Utc>,
    /// Variable abbreviation (`TMP`).
    pub variable: String,
    /// Level text as written (`500 mb`, `2 m above ground`).
    pub level: String,
    /// Forecast text (`anl`, `12 hour fcst`).
    pub forecast: String,
}

/// The byte range of one GRIB message: `start..end` (end exclusive), `end == None` meaning
/// the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte, or `None` for "to the end of the file".
    pub end: Option<u64>,
}

/// A parsed inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GribIndex {
    entries: Vec<IdxEntry>,
    /// Distinct message offsets, strictly increasing.
    starts: Vec<u64>,
}

/// Normalises a level text for comparison: `hPa` is written `mb` by wgrib2.
fn normalise_level(level: &str) -> String {
    let level = level.trim();
    match level.strip_suffix(" hPa") {
        Some(p) => format!("{p} mb"),
        None => level.to_owned(),
    }
}

impl GribIndex {
    /// Parses an inventory. Every line must be well formed; message numbers and offsets must
    /// increase; the fields of one message share its offset.
    pub fn parse(text: &str) -> Result<GribIndex, IdxError> {
        if text.len() > MAX_IDX_BYTES {
            return Err(IdxError {
                line: 0,
                reason: format!(
                    "{} bytes, more than the {MAX_IDX_BYTES} accepted",
                    text.len()
                ),
            });
        }
        let mut entries: Vec<IdxEntry> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            if line > MAX_IDX_LINES {
                return Err(IdxError {
                    line,
                    reason: format!("more than {MAX_IDX_LINES} lines"),
                });
            }
            let raw = raw.trim_end_matches('\r');
            if raw.trim().is_empty() {
                continue;
            }
            let entry = parse_line(raw).map_err(|e| IdxError {
                line,
                reason: e.to_string(),
            })?;
            if let Some(prev) = entries.last() {
                let same_message = entry.message == prev.message;
                let ok = if same_message {
                    entry.offset == prev.offset
                        && matches!((prev.field, entry.field), (Some(a), Some(b)) if b == a + 1)
                } else {
                    entry.message > prev.message
                        && entry.offset > prev.offset
                        && matches!(entry.field, None | Some(1))
                };
                if !ok {
                    return Err(IdxError {
                        line,
                        reason: format!(
                            "record {} at byte {} does not follow record {} at byte {} \
                             (records and offsets must increase; fields of one message share its offset)",
                            record_text(&entry),
                            entry.offset,
                            record_text(prev),
                            prev.offset
                        ),
                    });
                }
            } else if !matches!(entry.field, None | Some(1)) {
                return Err(IdxError {
                    line,
                    reason: format!("the first record is {}", record_text(&entry)),
                });
            }
            entries.push(entry);
        }
        if entries.is_empty() {
            return Err(IdxError {
                line: 0,
                reason: "the inventory lists no messages".to_owned(),
            });
        }
        let mut starts: Vec<u64> = entries.iter().map(|e| e.offset).collect();
        starts.dedup();
        Ok(GribIndex { entries, starts })
    }

    /// Every field listed.
    pub fn entries(&self) -> &[IdxEntry] {
        &self.entries
    }

    /// The entries whose variable and level match (`level` compared after writing `hPa` as
    /// `mb`). Several entries mean the inventory is ambiguous for this request.
    pub fn find(&self, variable: &str, level: &str) -> Vec<&IdxEntry> {
        let level = normalise_level(level);
        self.entries
            .iter()
            .filter(|e| e.variable == variable && normalise_level(&e.level) == level)
            .collect()
    }

    /// The byte range of the message an entry belongs to.
    pub fn range_of(&self, entry: &IdxEntry) -> MessageRange {
        // starts is sorted and holds entry.offset
        let i = self.starts.partition_point(|s| *s < entry.offset);
        MessageRange {
            start: entry.offset,
            end: self.starts.get(i + 1).copied(),
        }
    }
}

fn record_text(e: &IdxEntry) -> String {
    match e.field {
        Some(k) => format!("{}.{k}", e.message),
        None => e.message.to_string(),
    }
}

wx_model::message_error! {
    /// Why one line of a `.idx` inventory cannot be read.
    pub(crate) struct IdxLineError;
}

fn parse_line(line: &str) -> Result<IdxEntry, IdxLineError> {
    let parts: Vec<&str> = line.split(':').collect();
    if parts.len() < 6 {
        return Err(format!(
            "expected `n:offset:d=YYYYMMDDHH:VAR:LEVEL:FCST:`, found {} fields in `{}`",
            parts.len(),
            truncate(line)
        )
        .into());
    }
    let (message, field) = match parts[0].split_once('.') {
        Some((m, k)) => (m, Some(k)),
        None => (parts[0], None),
    };
    let message: u32 = message
        .parse()
        .map_err(|_| format!("record number `{}` is not a number", truncate(parts[0])))?;
    let field = match field {
        Some(k) => Some(
            k.parse::<u32>()
                .ok()
                .filter(|k| *k >= 1)
                .ok_or_else(|| format!("field number `{}` is not a number ≥ 1", truncate(k)))?,
        ),
        None => None,
    };
    let offset: u64 = parts[1]
        .parse()
        .map_err(|_| format!("byte offset `{}` is not a number", truncate(parts[1])))?;
    let date = parts[2]
        .strip_prefix("d=")
        .ok_or_else(|| format!("`{}` is not `d=YYYYMMDDHH`", truncate(parts[2])))?;
    let reference_time = parse_date(date)
        .ok_or_else(|| format!("`{}` is not a date `YYYYMMDDHH`", truncate(date)))?;
    let variable = parts[3].trim();
    if variable.is_empty() {
        return Err("empty variable name".to_owned().into());
    }
    Ok(IdxEntry {
        message,
        field,
        offset,
        reference_time,
        variable: variable.to_owned(),
        level: parts[4].trim().to_owned(),
        forecast: parts[5].trim().to_owned(),
    })
}

fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(&format!("{s}00"), "%Y%m%d%H%M")
        .ok()
        .map(|t| t.and_utc())
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "1:0:d=2025010100:PRMSL:mean sea level:anl:\n\
2:990253:d=2025010100:CLWMR:1 hPa:anl:\n\
3.1:1200000:d=2025010100:UGRD:10 m above ground:anl:\n\
3.2:1200000:d=2025010100:VGRD:10 m above ground:anl:\n\
4:1500000:d=2025010100:HGT:500 mb:anl:\n";

    #[test]
    fn ranges_follow_the_next_message_and_the_last_runs_to_eof() {
        let idx = GribIndex::parse(SAMPLE).unwrap();
        assert_eq!(idx.entries().len(), 5);
        let prmsl = idx.find("PRMSL", "mean sea level");
        assert_eq!(prmsl.len(), 1);
        assert_eq!(
            idx.range_of(prmsl[0]),
            MessageRange {
                start: 0,
                end: Some(990253)
            }
        );
        let v = idx.find("VGRD", "10 m above ground")[0];
        assert_eq!(v.field, Some(2));
        assert_eq!(
            idx.range_of(v),
            MessageRange {
                start: 1_200_000,
                end: Some(1_500_000)
            },
            "the second field of a message has the message's range, not an empty one"
        );
        let z = idx.find("HGT", "500 hPa")[0];
        assert_eq!(
            idx.range_of(z),
            MessageRange {
                start: 1_500_000,
                end: None
            }
        );
        assert_eq!(
            z.reference_time,
            "2025-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(idx.find("TMP", "2 m above ground").is_empty());
    }

    #[test]
    fn malformed_lines_are_errors_with_their_line_number() {
        let cases = [
            ("1:0:d=2025010100:TMP\n", 1, "fields"),
            (
                "1:0:d=2025010100:TMP:2 m above ground:anl:\nx:5:d=2025010100:A:B:C:\n",
                2,
                "record number",
            ),
            (
                "1:zero:d=2025010100:TMP:2 m above ground:anl:\n",
                1,
                "offset",
            ),
            (
                "1:0:2025010100:TMP:2 m above ground:anl:\n",
                1,
                "d=YYYYMMDDHH",
            ),
            ("1:0:d=20251301:TMP:2 m above ground:anl:\n", 1, "date"),
            (
                "1:0:d=2025013100:TMP:2 m above ground:anl:\n2:0:d=2025013100:A:B:C:\n",
                2,
                "increase",
            ),
            (
                "1:10:d=2025013100:TMP:2 m above ground:anl:\n2:5:d=2025013100:A:B:C:\n",
                2,
                "increase",
            ),
            (
                "1.1:0:d=2025013100:U:B:C:\n1.3:0:d=2025013100:V:B:C:\n",
                2,
                "1.3",
            ),
            (
                "1.1:0:d=2025013100:U:B:C:\n1.2:7:d=2025013100:V:B:C:\n",
                2,
                "share",
            ),
            ("1.0:0:d=2025013100:U:B:C:\n", 1, "field number"),
            ("1:0:d=2025013100::B:C:\n", 1, "empty variable"),
            ("\n\n", 0, "no messages"),
            (
                "1:99999999999999999999999:d=2025013100:U:B:C:\n",
                1,
                "offset",
            ),
        ];
        for (text, line, needle) in cases {
            let e = GribIndex::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn crlf_and_blank_lines_are_tolerated() {
        let text = "1:0:d=2025010100:TMP:2 m above ground:anl:\r\n\r\n2:100:d=2025010100:PRMSL:mean sea level:anl:\r\n";
        let idx = GribIndex::parse(text).unwrap();
        assert_eq!(idx.entries().len(), 2);
        assert_eq!(idx.entries()[1].forecast, "anl");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // a deterministic pseudo-random walk over printable and separator characters
        let alphabet = b"0123456789:.d=TMPmb \n\r-x";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let len = (state % 200) as usize;
            let mut s = String::new();
            for _ in 0..len {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[(state >> 33) as usize % alphabet.len()] as char);
            }
            let _ = GribIndex::parse(&s);
        }
    }
}
