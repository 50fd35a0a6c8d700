//! Rows and how they are written: the RBA dataset's 16 columns plus
//! `Attacker`, `Device ID` and `Device Binding`, timestamps as the dataset
//! writes them, UTC.

use std::io::Write;

use super::agents::Agents;
use super::world::{Geo, NONE, World};
use super::{Label, SimError, Summary};

/// The header line, in column order: the public dataset's columns (as
/// replay reads them), `Attacker`, `Device ID` and `Device Binding`.
pub const HEADER: [&str; 19] = {
    use crate::tools::replay::reader::{
        ATTACKER_COLUMN, COLUMNS, DEVICE_BINDING_COLUMN, DEVICE_ID_COLUMN,
    };
    let mut h = [ATTACKER_COLUMN; 19];
    let mut i = 0;
    while i < COLUMNS.len() {
        h[i] = COLUMNS[i];
        i += 1;
    }
    h[17] = DEVICE_ID_COLUMN;
    h[18] = DEVICE_BINDING_COLUMN;
    h
};

/// A row without a device id.
pub const NO_DEVICE: u32 = 0;

/// An RTT that is not written (the dataset's empty cells).
pub const NO_RTT: u32 = u32::MAX;

/// One login attempt before it is written.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// Milliseconds since the epoch, UTC.
    pub t: i64,
    /// Creation order: breaks timestamp ties deterministically.
    pub seq: u64,
    /// User ID.
    pub user: i64,
    /// Index into the generator's users, or `u32::MAX` for an attack on
    /// an ID without an account.
    pub user_index: u32,
    /// The real address (before any placeholder rewrite).
    pub ip: u32,
    /// Where `ip` is ([`World::geo`], computed once).
    pub geo: Geo,
    /// Agent id.
    pub ua: u32,
    /// Round-trip time, or [`NO_RTT`].
    pub rtt: u32,
    /// Whether the login succeeded.
    pub success: bool,
    /// Device id number ([`NO_DEVICE`]: none sent).
    pub device: u32,
    /// The login service verified the device's bound key.
    pub bound: bool,
    /// The attacker model, None for a legitimate row.
    pub label: Option<Label>,
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    crate::domain::days_from_civil(y, i64::from(m), i64::from(d))
}

/// (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let (y, m, d) = crate::domain::civil_from_days(z);
    // Months are 1..=12 and days 1..=31.
    (y, m as u32, d as u32)
}

/// Parses `YYYY-MM-DD` into days since 1970-01-01.
///
/// # Errors
///
/// [`SimError::Config`] naming `start` when it is not such a date.
pub fn parse_date(s: &str) -> Result<i64, SimError> {
    let bad = || SimError::Config {
        field: "start",
        reason: format!("`{s}` is not a YYYY-MM-DD date"),
    };
    let mut parts = s.trim().splitn(3, '-');
    let y = parts
        .next()
        .and_then(|p| p.parse::<i64>().ok())
        .ok_or_else(bad)?;
    let m = parts
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or_else(bad)?;
    let d = parts
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or_else(bad)?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d);
    if civil_from_days(days) != (y, m, d) {
        return Err(bad());
    }
    Ok(days)
}

fn push_digits(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    let mut n = n;
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = tmp.len() - i;
    for _ in len..width {
        buf.push(b'0');
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_i64(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    push_digits(buf, n.unsigned_abs(), 0);
}

fn push_timestamp(buf: &mut Vec<u8>, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000) as u64;
    let (y, m, d) = civil_from_days(days);
    push_digits(buf, y.max(0) as u64, 4);
    buf.push(b'-');
    push_digits(buf, u64::from(m), 2);
    buf.push(b'-');
    push_digits(buf, u64::from(d), 2);
    buf.push(b' ');
    push_digits(buf, rem / 3_600_000, 2);
    buf.push(b':');
    push_digits(buf, rem / 60_000 % 60, 2);
    buf.push(b':');
    push_digits(buf, rem / 1000 % 60, 2);
    buf.push(b'.');
    push_digits(buf, rem % 1000, 3);
}

/// `2026-03-02 12:43:30.772` for milliseconds since the epoch.
pub fn format_timestamp(ms: i64) -> String {
    let mut buf = Vec::with_capacity(23);
    push_timestamp(&mut buf, ms);
    String::from_utf8_lossy(&buf).into_owned()
}

fn push_ip(buf: &mut Vec<u8>, ip: u32) {
    for (i, octet) in ip.to_be_bytes().into_iter().enumerate() {
        if i > 0 {
            buf.push(b'.');
        }
        push_digits(buf, u64::from(octet), 0);
    }
}

/// Writes rows as CSV and counts what it writes.
pub struct Out<W: Write> {
    csv: csv::Writer<W>,
    scratch: Vec<u8>,
    index: u64,
    seen_ua: Vec<bool>,
}

impl<W: Write> Out<W> {
    /// A writer that has written the header.
    pub fn new(out: W) -> Result<Out<W>, SimError> {
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .buffer_capacity(1 << 16)
            .from_writer(out);
        csv.write_record(HEADER)?;
        Ok(Out {
            csv,
            scratch: Vec::with_capacity(256),
            index: 0,
            seen_ua: Vec::new(),
        })
    }

    /// Writes `row`, updating the summary's per-row counts.
    pub fn write(
        &mut self,
        row: &Row,
        world: &World,
        agents: &Agents,
        s: &mut Summary,
    ) -> Result<(), SimError> {
        let geo = row.geo;
        let (ip, asn) = world.written(row.ip, &geo);
        let (country, region, city) = world.names(&geo);
        let agent = agents.get(row.ua);
        let listed = world.bad.contains(row.ip);

        let b = &mut self.scratch;
        b.clear();
        let mut ends = [0usize; 7];
        push_digits(b, self.index, 0);
        ends[0] = b.len();
        push_timestamp(b, row.t);
        ends[1] = b.len();
        push_i64(b, row.user);
        ends[2] = b.len();
        if row.rtt != NO_RTT {
            push_digits(b, u64::from(row.rtt), 0);
        }
        ends[3] = b.len();
        push_ip(b, ip);
        ends[4] = b.len();
        push_digits(b, u64::from(asn), 0);
        ends[5] = b.len();
        if row.device != NO_DEVICE {
            b.push(b'd');
            push_digits(b, u64::from(row.device), 0);
        }
        ends[6] = b.len();
        let field = |i: usize| &b[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
        let tf = |v: bool| if v { "True" } else { "False" };
        let ato = row.success && row.label.is_some();
        self.csv.write_record([
            field(0),
            field(1),
            field(2),
            field(3),
            field(4),
            country.as_bytes(),
            region.as_bytes(),
            city.as_bytes(),
            field(5),
            agent.ua.as_bytes(),
            agent.browser.as_bytes(),
            agent.os.as_bytes(),
            agent.device_type.as_bytes(),
            tf(row.success).as_bytes(),
            tf(listed).as_bytes(),
            tf(ato).as_bytes(),
            row.label.map_or("", Label::as_str).as_bytes(),
            field(6),
            if row.bound && row.device != NO_DEVICE {
                b"key_verified".as_slice()
            } else {
                b"".as_slice()
            },
        ])?;

        self.index += 1;
        s.rows += 1;
        if s.rows == 1 {
            s.span_ms.0 = row.t;
        }
        s.span_ms.1 = row.t;
        if row.rtt == NO_RTT {
            s.empty_rtt += 1;
        }
        if geo.region == NONE || geo.city == NONE {
            s.unknown_location += 1;
        }
        if ip != row.ip {
            s.placeholder_ip += 1;
        }
        if asn >= 500_000 {
            s.placeholder_asn += 1;
        }
        if agent.device_type.is_empty() {
            s.unparsable_ua += 1;
        }
        if listed {
            if row.label.is_some() {
                s.attack_ip_rows.0 += 1;
            } else {
                s.attack_ip_rows.1 += 1;
            }
        }
        match row.label {
            Some(l) => {
                s.attack_rows[l as usize] += 1;
                if ato {
                    s.takeovers += 1;
                }
                if row.user_index == u32::MAX {
                    s.unknown_user_rows += 1;
                }
            }
            None => {
                s.legit_rows += 1;
                if !row.success {
                    s.legit_failures += 1;
                }
            }
        }
        let ua = row.ua as usize;
        if ua >= self.seen_ua.len() {
            self.seen_ua.resize(ua + 1, false);
        }
        if !self.seen_ua[ua] {
            self.seen_ua[ua] = true;
            s.distinct_uas += 1;
        }
        Ok(())
    }

    /// Flushes the underlying writer.
    pub fn finish(mut self) -> Result<(), SimError> {
        self.csv.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_format_like_the_dataset() {
        assert_eq!(parse_date("1970-01-01").unwrap(), 0);
        assert_eq!(parse_date("2026-03-02").unwrap(), 20_514);
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("yesterday").is_err());
        let ms = days_from_civil(2020, 2, 3) * 86_400_000 + 45_810_772;
        assert_eq!(format_timestamp(ms), "2020-02-03 12:43:30.772");
        for z in [-1000, 0, 59, 365, 11_016, 20_514, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
