//! The RBA login dataset's CSV format (Wiefling et al., ACM TOPS 2022,
//! doi:10.1145/3546069), read row by row without per-row allocations.
//!
//! The header must name exactly the 16 columns of the public file
//! ([`COLUMNS`]), in any order, optionally with the extension columns that
//! `riskgate simulate` writes: `Attacker` ([`ATTACKER_COLUMN`]), `Device ID`
//! ([`DEVICE_ID_COLUMN`]) and `Device Binding` ([`DEVICE_BINDING_COLUMN`]:
//! `key_verified`, or `none`/empty). The public file has no device columns,
//! so its rows carry no device id. A UTF-8 byte-order mark before the header
//! is ignored.
//!
//! Quirks of the public file, and how each is read:
//!
//! | column | quirk | read as |
//! |---|---|---|
//! | `Login Timestamp` | `2020-02-03 12:43:30.772` (UTC, 0–9 fraction digits; `T` and a trailing `Z` accepted) or integer epoch milliseconds | [`UnixMillis`] |
//! | `Round-Trip Time [ms]` | empty for most rows | `None` |
//! | `Region`, `City` (and `Country`) | `-` or empty when unknown | `None` |
//! | `IP Address` | placeholder addresses in 10.0.0.0/8 | kept (an identifier like any other), counted by [`Row::placeholder_ip`] |
//! | `ASN` | placeholder values ≥ 500 000 | kept, counted by [`Row::placeholder_asn`] |
//! | `User Agent String` | quoted, with commas; may be unparsable | raw string, `None` when empty |
//! | `Browser …`, `OS …`, `Device Type` | empty when the UA could not be parsed | `None` |
//! | `Login Successful`, `Is Attack IP`, `Is Account Takeover` | `True`/`False` | `true`/`false` in any case |
//!
//! Every other value is an error that names the line and the column.

use std::io;
use std::net::IpAddr;

use crate::domain::UnixMillis;

/// The columns of the public RBA dataset, in its order.
pub const COLUMNS: [&str; 16] = [
    "index",
    "Login Timestamp",
    "User ID",
    "Round-Trip Time [ms]",
    "IP Address",
    "Country",
    "Region",
    "City",
    "ASN",
    "User Agent String",
    "Browser Name and Version",
    "OS Name and Version",
    "Device Type",
    "Login Successful",
    "Is Attack IP",
    "Is Account Takeover",
];

/// The optional 17th column of synthetic data: the attacker model that made
/// the row (`naive`, `vpn`, `targeted`, `stuffing`, …), empty for a
/// legitimate login.
pub const ATTACKER_COLUMN: &str = "Attacker";

/// Synthetic data's device id (a cookie or installation id), empty when the
/// channel sent none.
pub const DEVICE_ID_COLUMN: &str = "Device ID";

/// Synthetic data's device binding: `key_verified` when the login service
/// verified a key bound to the device, `none` or empty otherwise.
pub const DEVICE_BINDING_COLUMN: &str = "Device Binding";

/// The extension columns, in slot order after [`COLUMNS`].
const EXTENSIONS: [&str; 3] = [ATTACKER_COLUMN, DEVICE_ID_COLUMN, DEVICE_BINDING_COLUMN];

/// ASNs at or above this are the dataset's placeholders.
pub const PLACEHOLDER_ASN: u32 = 500_000;

const INDEX: usize = 0;
const TIMESTAMP: usize = 1;
const USER: usize = 2;
const RTT: usize = 3;
const IP: usize = 4;
const COUNTRY: usize = 5;
const REGION: usize = 6;
const CITY: usize = 7;
const ASN: usize = 8;
const UA: usize = 9;
const BROWSER: usize = 10;
const OS: usize = 11;
const DEVICE_TYPE: usize = 12;
const SUCCESS: usize = 13;
const ATTACK_IP: usize = 14;
const TAKEOVER: usize = 15;
const ATTACKER: usize = 16;
const DEVICE_ID: usize = 17;
const DEVICE_BINDING: usize = 18;
/// Slots: the 16 columns and the extensions.
const SLOTS: usize = 19;

/// Why the file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The underlying reader failed.
    #[error("cannot read the input: {0}")]
    Io(#[from] io::Error),
    /// The file is empty.
    #[error("the input is empty: expected the RBA dataset header")]
    Empty,
    /// The header is not the RBA dataset's.
    #[error("line 1: not the RBA dataset header: {0}")]
    Header(String),
    /// A row does not have one field per column.
    #[error("line {line}: {found} fields, expected {expected}")]
    FieldCount {
        line: u64,
        found: usize,
        expected: usize,
    },
    /// A value is not valid for its column.
    #[error("line {line}, column `{column}`: {message}")]
    Field {
        line: u64,
        column: &'static str,
        message: String,
    },
    /// A row is earlier than the one before it.
    #[error(
        "line {line}: `Login Timestamp` {at} is earlier than {previous} on line {previous_line}: rows must be in time order (sort the file by `Login Timestamp`, or pass --reorder-window)"
    )]
    OutOfOrder {
        line: u64,
        at: i64,
        previous: i64,
        previous_line: u64,
    },
}

impl ReadError {
    /// True for errors about one row (which `--skip-bad` may skip), false
    /// for errors about the whole input.
    pub fn is_row_error(&self) -> bool {
        matches!(
            self,
            ReadError::FieldCount { .. } | ReadError::Field { .. } | ReadError::OutOfOrder { .. }
        )
    }
}

/// One row, borrowing from the record it was parsed from.
#[derive(Clone, Debug, PartialEq)]
pub struct Row<'a> {
    /// Line of the file where the row starts (1 is the header).
    pub line: u64,
    pub index: u64,
    pub at: UnixMillis,
    pub user: &'a str,
    pub rtt_ms: Option<f64>,
    pub ip: IpAddr,
    /// The `IP Address` column as written.
    pub ip_text: &'a str,
    pub country: Option<&'a str>,
    pub region: Option<&'a str>,
    pub city: Option<&'a str>,
    pub asn: Option<u32>,
    /// The `ASN` column as written, `None` when empty.
    pub asn_text: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub browser: Option<&'a str>,
    pub os: Option<&'a str>,
    pub device_type: Option<&'a str>,
    pub success: bool,
    pub attack_ip: bool,
    pub account_takeover: bool,
    /// The `Attacker` column, when present and not empty.
    pub attacker: Option<&'a str>,
    /// The `Device ID` column, when present and not empty.
    pub device_id: Option<&'a str>,
    /// The `Device Binding` column says `key_verified` (needs a device id).
    pub key_verified: bool,
}

impl Row<'_> {
    /// The IP is one of the dataset's 10.0.0.0/8 placeholders.
    pub fn placeholder_ip(&self) -> bool {
        matches!(self.ip, IpAddr::V4(v4) if v4.octets()[0] == 10)
    }

    /// The ASN is one of the dataset's placeholders (≥ 500 000).
    pub fn placeholder_asn(&self) -> bool {
        self.asn.is_some_and(|a| a >= PLACEHOLDER_ASN)
    }
}

/// Reads RBA dataset rows from CSV.
pub struct RbaReader<R: io::Read> {
    csv: csv::Reader<R>,
    /// Field position of each of [`COLUMNS`] and the extensions
    /// (`usize::MAX`: absent).
    positions: [usize; SLOTS],
    has_attacker: bool,
    width: usize,
}

impl<R: io::Read> RbaReader<R> {
    /// Reads and checks the header.
    pub fn new(input: R) -> Result<Self, ReadError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(input);
        let mut header = csv::ByteRecord::new();
        if !csv.read_byte_record(&mut header).map_err(csv_error)? {
            return Err(ReadError::Empty);
        }
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let f = if i == 0 {
                    f.strip_prefix(b"\xef\xbb\xbf").unwrap_or(f)
                } else {
                    f
                };
                String::from_utf8_lossy(f).into_owned()
            })
            .collect();
        let (positions, has_attacker) = header_positions(&names)?;
        Ok(RbaReader {
            csv,
            positions,
            has_attacker,
            width: names.len(),
        })
    }

    /// True if the file has the `Attacker` extension column.
    pub fn has_attacker_column(&self) -> bool {
        self.has_attacker
    }

    /// Reads the next record into `record`; `false` at the end of input.
    /// The record is parsed separately ([`RbaReader::parse`]) so that a bad
    /// row can be skipped and a record can be held back for reordering.
    pub fn read(&mut self, record: &mut csv::ByteRecord) -> Result<bool, ReadError> {
        self.csv.read_byte_record(record).map_err(csv_error)
    }

    /// Parses a record read by this reader.
    pub fn parse<'r>(&self, record: &'r csv::ByteRecord) -> Result<Row<'r>, ReadError> {
        parse_record(record, &self.positions, self.has_attacker, self.width)
    }
}

/// The line a record starts on.
pub fn line_of(record: &csv::ByteRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

fn csv_error(e: csv::Error) -> ReadError {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => ReadError::Io(e),
        other => ReadError::Io(io::Error::other(format!("{other:?}"))),
    }
}

fn header_positions(names: &[String]) -> Result<([usize; SLOTS], bool), ReadError> {
    let mut positions = [usize::MAX; SLOTS];
    let mut unknown = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let slot = COLUMNS.iter().chain(&EXTENSIONS).position(|c| c == name);
        match slot {
            Some(s) if positions[s] != usize::MAX => {
                return Err(ReadError::Header(format!("column `{name}` appears twice")));
            }
            Some(s) => positions[s] = i,
            None => unknown.push(format!("`{name}`")),
        }
    }
    let missing: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .filter(|(i, _)| positions[*i] == usize::MAX)
        .map(|(_, c)| format!("`{c}`"))
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing {}", missing.join(", ")));
    }
    if !unknown.is_empty() {
        problems.push(format!(
            "unknown {} (only `{}` may be added)",
            unknown.join(", "),
            EXTENSIONS.join("`, `")
        ));
    }
    if !problems.is_empty() {
        return Err(ReadError::Header(problems.join("; ")));
    }
    Ok((positions, positions[ATTACKER] != usize::MAX))
}

fn column_name(slot: usize) -> &'static str {
    COLUMNS
        .iter()
        .chain(&EXTENSIONS)
        .nth(slot)
        .copied()
        .unwrap_or(ATTACKER_COLUMN)
}

fn parse_record<'r>(
    record: &'r csv::ByteRecord,
    positions: &[usize; SLOTS],
    has_attacker: bool,
    width: usize,
) -> Result<Row<'r>, ReadError> {
    let line = line_of(record);
    if record.len() != width {
        return Err(ReadError::FieldCount {
            line,
            found: record.len(),
            expected: width,
        });
    }
    let bad = |slot: usize, message: String| ReadError::Field {
        line,
        column: column_name(slot),
        message,
    };
    let text = |slot: usize| -> Result<&'r str, ReadError> {
        let bytes = record.get(positions[slot]).unwrap_or_default();
        std::str::from_utf8(bytes).map_err(|e| bad(slot, format!("not UTF-8 ({e})")))
    };
    let optional = |s: &'r str| if s.is_empty() { None } else { Some(s) };
    let place = |s: &'r str| {
        if s.is_empty() || s == "-" {
            None
        } else {
            Some(s)
        }
    };
    let boolean = |slot: usize| -> Result<bool, ReadError> {
        let s = text(slot)?;
        if s.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if s.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(bad(
                slot,
                format!("`{}` is not a boolean (True or False)", clip(s)),
            ))
        }
    };

    let index_text = text(INDEX)?;
    let index = index_text
        .parse::<u64>()
        .map_err(|_| bad(INDEX, format!("`{}` is not a row number", clip(index_text))))?;
    let ts = text(TIMESTAMP)?;
    let at = parse_timestamp(ts).ok_or_else(|| {
        bad(
            TIMESTAMP,
            format!(
                "`{}` is not a timestamp (expected `YYYY-MM-DD HH:MM:SS[.fff]` in UTC or epoch milliseconds)",
                clip(ts)
            ),
        )
    })?;
    let user = text(USER)?;
    if user.is_empty() {
        return Err(bad(USER, "empty user id".into()));
    }
    let rtt_text = text(RTT)?;
    let rtt_ms = match rtt_text {
        "" => None,
        s => match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                return Err(bad(
                    RTT,
                    format!("`{}` is not a round-trip time in ms", clip(s)),
                ));
            }
        },
    };
    let ip_text = text(IP)?;
    let ip = ip_text
        .parse::<IpAddr>()
        .map_err(|_| bad(IP, format!("`{}` is not an IP address", clip(ip_text))))?;
    let asn_text = text(ASN)?;
    let asn = match asn_text {
        "" => None,
        s => Some(
            s.parse::<u32>()
                .map_err(|_| bad(ASN, format!("`{}` is not an AS number", clip(s))))?,
        ),
    };
    let attacker = if has_attacker {
        optional(text(ATTACKER)?.trim())
    } else {
        None
    };
    let device_id = if positions[DEVICE_ID] == usize::MAX {
        None
    } else {
        optional(text(DEVICE_ID)?)
    };
    let key_verified = if positions[DEVICE_BINDING] == usize::MAX {
        false
    } else {
        match text(DEVICE_BINDING)?.trim() {
            "" | "none" => false,
            "key_verified" if device_id.is_some() => true,
            "key_verified" => {
                return Err(bad(
                    DEVICE_BINDING,
                    "`key_verified` needs a `Device ID`".into(),
                ));
            }
            other => {
                return Err(bad(
                    DEVICE_BINDING,
                    format!("`{}` is not a binding (none or key_verified)", clip(other)),
                ));
            }
        }
    };
    Ok(Row {
        line,
        index,
        at,
        user,
        rtt_ms,
        ip,
        ip_text,
        country: place(text(COUNTRY)?),
        region: place(text(REGION)?),
        city: place(text(CITY)?),
        asn,
        asn_text: optional(asn_text),
        user_agent: optional(text(UA)?),
        browser: optional(text(BROWSER)?),
        os: optional(text(OS)?),
        device_type: optional(text(DEVICE_TYPE)?),
        success: boolean(SUCCESS)?,
        attack_ip: boolean(ATTACK_IP)?,
        account_takeover: boolean(TAKEOVER)?,
        attacker,
        device_id,
        key_verified,
    })
}

/// At most 60 characters of a value, for error messages.
fn clip(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(57).collect();
        c.push_str("...");
        c
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0i64, |acc, d| {
        acc.checked_mul(10)?.checked_add(i64::from(d - b'0'))
    })
}

/// `YYYY-MM-DD HH:MM:SS[.f…]` (UTC; `T` instead of the space and a trailing
/// `Z` accepted; up to 9 fraction digits, truncated to milliseconds) or an
/// integer of epoch milliseconds.
pub fn parse_timestamp(s: &str) -> Option<UnixMillis> {
    let b = s.as_bytes();
    if let Some(rest) = s.strip_prefix('-') {
        return digits(rest.as_bytes()).map(|v| UnixMillis(-v));
    }
    if b.len() < 19 || b[4] != b'-' {
        return digits(b).map(UnixMillis);
    }
    let b = b.strip_suffix(b"Z").unwrap_or(b);
    if b.len() < 19
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, sec) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
        return None;
    }
    let ms = match &b[19..] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            digits(frac)?;
            let mut ms = 0;
            for i in 0..3 {
                ms = ms * 10 + frac.get(i).map_or(0, |c| i64::from(c - b'0'));
            }
            ms
        }
        _ => return None,
    };
    let days = crate::domain::days_from_civil(y, mo, d);
    Some(UnixMillis(
        ((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms,
    ))
}

/// Reads every row of `bytes`, returning how many parsed and how many were
/// bad. Never panics; for fuzzing and property tests.
pub fn read_all(bytes: &[u8]) -> Result<(u64, u64), ReadError> {
    let mut r = RbaReader::new(bytes)?;
    let mut rec = csv::ByteRecord::new();
    let (mut good, mut bad) = (0, 0);
    while r.read(&mut rec)? {
        match r.parse(&rec) {
            Ok(_) => good += 1,
            Err(_) => bad += 1,
        }
    }
    Ok((good, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str = "index,Login Timestamp,User ID,Round-Trip Time [ms],IP Address,Country,Region,City,ASN,User Agent String,Browser Name and Version,OS Name and Version,Device Type,Login Successful,Is Attack IP,Is Account Takeover";

    fn rows(text: &str) -> Vec<Result<String, String>> {
        let mut r = RbaReader::new(text.as_bytes()).unwrap();
        let mut rec = csv::ByteRecord::new();
        let mut out = Vec::new();
        while r.read(&mut rec).unwrap() {
            out.push(
                r.parse(&rec)
                    .map(|row| format!("{row:?}"))
                    .map_err(|e| e.to_string()),
            );
        }
        out
    }

    fn one(line: &str) -> Row<'static> {
        let text = format!("{HEADER}\n{line}\n");
        let r = RbaReader::new(std::io::Cursor::new(text.into_bytes())).unwrap();
        let mut r = r;
        let mut rec = csv::ByteRecord::new();
        assert!(r.read(&mut rec).unwrap());
        let rec: &'static csv::ByteRecord = Box::leak(Box::new(rec));
        r.parse(rec).unwrap()
    }

    #[test]
    fn reads_every_quirk_of_the_public_file() {
        let row = one(
            r#"7,2020-02-03 12:43:30.772,-4324475583306591935,,10.0.65.171,NO,-,-,29695,"Mozilla/5.0 (iPhone; CPU iPhone OS 13_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1 Mobile/15E148 Safari/604.1",Mobile Safari 13.1,iOS 13.4,mobile,True,False,FALSE"#,
        );
        assert_eq!(row.line, 2);
        assert_eq!(row.index, 7);
        assert_eq!(row.at, UnixMillis(1_580_733_810_772));
        assert_eq!(row.user, "-4324475583306591935");
        assert_eq!(row.rtt_ms, None);
        assert!(row.placeholder_ip());
        assert_eq!(row.country, Some("NO"));
        assert_eq!((row.region, row.city), (None, None));
        assert_eq!(row.asn, Some(29695));
        assert!(!row.placeholder_asn());
        assert!(row.user_agent.unwrap().contains("(KHTML, like Gecko)"));
        assert_eq!(row.browser, Some("Mobile Safari 13.1"));
        assert_eq!(row.device_type, Some("mobile"));
        assert!(row.success && !row.attack_ip && !row.account_takeover);
        assert_eq!(row.attacker, None);

        let row = one(
            "8,1580733810999,42,123.5,81.166.1.2,NO,Oslo,Oslo,512345,garbage ua,,,,false,TRUE,true",
        );
        assert_eq!(row.at, UnixMillis(1_580_733_810_999));
        assert_eq!(row.rtt_ms, Some(123.5));
        assert!(row.placeholder_asn());
        assert_eq!(row.region, Some("Oslo"));
        assert_eq!((row.browser, row.os, row.device_type), (None, None, None));
        assert!(!row.success && row.attack_ip && row.account_takeover);
    }

    #[test]
    fn the_attacker_column_is_optional_and_may_come_anywhere() {
        let header = format!("Attacker,{HEADER}");
        let text = format!(
            "{header}\nvpn,1,2020-01-01 00:00:00,u,,1.2.3.4,SE,-,-,3301,ua,b,o,desktop,True,False,False\n,2,2020-01-01 00:00:01,u,,1.2.3.4,SE,-,-,3301,ua,b,o,desktop,True,False,False\n"
        );
        let mut r = RbaReader::new(text.as_bytes()).unwrap();
        assert!(r.has_attacker_column());
        let mut rec = csv::ByteRecord::new();
        assert!(r.read(&mut rec).unwrap());
        assert_eq!(r.parse(&rec).unwrap().attacker, Some("vpn"));
        assert!(r.read(&mut rec).unwrap());
        assert_eq!(r.parse(&rec).unwrap().attacker, None);
    }

    #[test]
    fn the_device_columns_are_optional_and_checked() {
        let header = format!("{HEADER},Attacker,Device ID,Device Binding");
        let row = "1,2020-01-01 00:00:00,u,,1.2.3.4,SE,-,-,3301,ua,b,o,desktop,True,False,False";
        let text = format!(
            "{header}\n{row},,d1,key_verified\n{row},,,\n{row},targeted,d1,none\n{row},,,key_verified\n{row},,d1,maybe\n"
        );
        let mut r = RbaReader::new(text.as_bytes()).unwrap();
        let mut rec = csv::ByteRecord::new();
        let mut next = || {
            assert!(r.read(&mut rec).unwrap());
            r.parse(&rec)
                .map(|row| (row.device_id.map(str::to_string), row.key_verified))
        };
        assert_eq!(next().unwrap(), (Some("d1".into()), true));
        assert_eq!(next().unwrap(), (None, false));
        assert_eq!(next().unwrap(), (Some("d1".into()), false));
        let e = next().unwrap_err().to_string();
        assert!(
            e.contains("Device Binding") && e.contains("needs a `Device ID`"),
            "{e}"
        );
        let e = next().unwrap_err().to_string();
        assert!(e.contains("`maybe` is not a binding"), "{e}");
    }

    #[test]
    fn a_bom_before_the_header_is_ignored() {
        let text = format!("\u{feff}{HEADER}\n");
        assert!(RbaReader::new(text.as_bytes()).is_ok());
    }

    #[test]
    fn bad_headers_say_what_is_wrong() {
        let e = RbaReader::new("a,b\n".as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("missing `index`"), "{e}");
        assert!(e.contains("unknown `a`, `b`"), "{e}");
        let e = RbaReader::new(format!("{HEADER},index\n").as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`index` appears twice"), "{e}");
        assert!(matches!(
            RbaReader::new("".as_bytes()),
            Err(ReadError::Empty)
        ));
    }

    #[test]
    fn bad_values_name_line_and_column() {
        let good = "1,2020-01-01 00:00:00,u,,1.2.3.4,SE,-,-,3301,ua,b,o,desktop,True,False,False";
        let cases = [
            (
                good.replace("2020-01-01 00:00:00", "2020-02-30 00:00:00"),
                "column `Login Timestamp`: `2020-02-30 00:00:00` is not a timestamp",
            ),
            (
                good.replace("1.2.3.4", "1.2.3"),
                "column `IP Address`: `1.2.3` is not an IP address",
            ),
            (
                good.replace(",3301,", ",AS3301,"),
                "column `ASN`: `AS3301` is not an AS number",
            ),
            (
                good.replace("True,False,False", "yes,False,False"),
                "column `Login Successful`: `yes` is not a boolean",
            ),
            (
                good.replace(",,1.2.3.4", ",-5,1.2.3.4"),
                "column `Round-Trip Time [ms]`: `-5`",
            ),
            (good.replace("1,2020", "x,2020"), "column `index`"),
            (good.replace(",u,", ",,"), "column `User ID`: empty user id"),
            (
                good.replace(",desktop", ""),
                "line 3: 15 fields, expected 16",
            ),
        ];
        for (line, want) in cases {
            let text = format!("{HEADER}\n{good}\n{line}\n");
            let got = rows(&text);
            assert!(got[0].is_ok(), "{:?}", got[0]);
            let e = got[1].clone().unwrap_err();
            assert!(e.contains(want), "{e} does not contain {want}");
            if !want.starts_with("line") {
                assert!(e.starts_with("line 3, "), "{e}");
            }
        }
    }

    #[test]
    fn timestamps() {
        let t = |s| parse_timestamp(s).map(|u| u.0);
        assert_eq!(t("1970-01-01 00:00:00"), Some(0));
        assert_eq!(t("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(t("2020-02-03 12:43:30.772"), Some(1_580_733_810_772));
        assert_eq!(t("2020-02-03 12:43:30.772123456"), Some(1_580_733_810_772));
        assert_eq!(t("2020-02-29 00:00:00"), Some(1_582_934_400_000));
        assert_eq!(t("2021-02-29 00:00:00"), None);
        assert_eq!(t("2020-02-03 24:00:00"), None);
        assert_eq!(t("2020-02-03 12:43:30."), None);
        assert_eq!(t("2020-02-03 12:43:30.1234567890"), None);
        assert_eq!(t("1580733810772"), Some(1_580_733_810_772));
        assert_eq!(t("-1000"), Some(-1000));
        assert_eq!(t(""), None);
        assert_eq!(t("12:43"), None);
        assert_eq!(t("99999999999999999999999"), None);
    }

    proptest! {
        /// The reader never panics, whatever the bytes (a fuzz target
        /// reuses [`read_all`]).
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = read_all(&bytes);
        }

        #[test]
        fn never_panics_on_arbitrary_rows_under_a_good_header(
            body in proptest::collection::vec(
                proptest::sample::select(b",,,,\"\n\r-.:  0123456789TrueFalsetrufals\xef\xbb\xbf\xff".to_vec()),
                0..1500,
            )
        ) {
            let mut bytes = HEADER.as_bytes().to_vec();
            bytes.push(b'\n');
            bytes.extend(body);
            let _ = read_all(&bytes);
        }

        #[test]
        fn timestamps_never_panic(s in ".{0,40}") {
            let _ = parse_timestamp(&s);
        }
    }
}
