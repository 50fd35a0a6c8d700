//! The simulated Internet: countries, cities, ISPs, mobile carriers,
//! hosting networks, the MaxMind test-data overlay and the known-bad list.
//!
//! Every generated address maps to one country, region, city and ASN
//! through [`World::geo`], a pure function of the address: the same IP
//! always carries the same geo columns, whoever uses it. ISP and carrier
//! blocks get the city of each /24 from a fixed hash over the country's
//! city weights; hosting blocks have a fixed city; an address in one of
//! MaxMind's test networks (when the data directory is there) takes that
//! network's answer, so a lookup in MaxMind's test databases agrees.

use std::net::Ipv4Addr;
use std::path::Path;

use super::SimError;
use super::rng::{self, Rng};

/// The built-in table (see the file's header for its format).
const BUILTIN_TABLE: &str = include_str!("world.txt");

/// Salts for the per-/24 hashes, so the city and quirk draws are
/// independent of each other.
const CITY_SALT: u64 = 0x5EED_C17E;
const QUIRK_SALT: u64 = 0x0B5E_55ED;
const PLACEHOLDER_SALT: u64 = 0x1A7E_F00D;

/// Share of ISP/carrier /24s whose region and city are unknown (`-`).
pub const UNKNOWN_REGION_RATE: f64 = 0.012;
/// Share of ISP/carrier /24s whose city alone is unknown.
pub const UNKNOWN_CITY_RATE: f64 = 0.02;
/// Share of ISP/carrier /24s written as a 10.x placeholder address.
pub const PLACEHOLDER_IP_RATE: f64 = 0.004;
/// Share of ISP/carrier /24s written with a placeholder ASN (≥ 500000).
pub const PLACEHOLDER_ASN_RATE: f64 = 0.003;

/// What a network is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetKind {
    /// A fixed-line home ISP.
    Isp,
    /// A mobile carrier (addresses shared behind CGNAT).
    Mobile,
    /// A hosting, cloud or VPN network.
    Hosting,
}

/// An autonomous system's presence in one country.
#[derive(Debug)]
pub struct Network {
    /// Its use.
    pub kind: NetKind,
    /// AS number.
    pub asn: u32,
    /// Organisation name (for the summary and tests).
    pub name: Box<str>,
    /// Index into [`World::countries`].
    pub country: u16,
    /// Fixed (region, city) for hosting networks.
    pub fixed: Option<(u16, u16)>,
    /// Address blocks: (first, last), inclusive.
    pub blocks: Vec<(u32, u32)>,
    /// Cumulative block sizes, for uniform draws over the network.
    cum: Vec<f64>,
}

/// A region (first-level subdivision).
#[derive(Debug)]
pub struct Region {
    /// Its name.
    pub name: Box<str>,
    /// UTC offset in minutes.
    pub tz_min: i32,
}

/// A city.
#[derive(Debug)]
pub struct City {
    /// Its name.
    pub name: Box<str>,
    /// Index into the country's regions.
    pub region: u16,
}

/// A country and what is in it.
#[derive(Debug)]
pub struct Country {
    /// ISO 3166-1 alpha-2 code.
    pub code: Box<str>,
    /// Weight as a home country of legitimate users.
    pub home_w: f64,
    /// Weight as a travel destination.
    pub travel_w: f64,
    /// Weight as an origin of untargeted attacks.
    pub attack_w: f64,
    /// Median round-trip time to the service, ms.
    pub rtt_ms: f64,
    /// Regions.
    pub regions: Vec<Region>,
    /// Cities (hosting and overlay cities are added with weight 0).
    pub cities: Vec<City>,
    city_cum: Vec<f64>,
    /// The same, kept to the largest cities: carrier gateways.
    gateway_cum: Vec<f64>,
    /// Home ISPs (indices into [`World::nets`]) and their shares.
    pub isps: Vec<u32>,
    isp_cum: Vec<f64>,
    /// Mobile carriers and their shares.
    pub mobiles: Vec<u32>,
    mobile_cum: Vec<f64>,
    /// Hosting networks.
    pub hostings: Vec<u32>,
}

/// Where an address is, as the CSV writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geo {
    /// Country index.
    pub country: u16,
    /// Region index, or [`NONE`] when unknown.
    pub region: u16,
    /// City index, or [`NONE`] when unknown.
    pub city: u16,
    /// AS number.
    pub asn: u32,
    /// The network's kind (hosting for addresses outside the table).
    pub kind: NetKind,
}

/// "Unknown" for a region or city index.
pub const NONE: u16 = u16::MAX;

#[derive(Debug)]
struct OverlayNet {
    first: u32,
    last: u32,
    country: u16,
    region: u16,
    city: u16,
}

/// Addresses a known-bad list would flag, and the entries attackers draw
/// from.
#[derive(Debug, Default)]
pub struct BadList {
    /// Merged, sorted ranges for membership.
    merged: Vec<(u32, u32)>,
    /// The list's entries (networks or single addresses), for draws.
    entries: Vec<(u32, u32)>,
    /// Tor exits among the entries (single addresses).
    tor: Vec<u32>,
}

impl BadList {
    /// Whether `ip` is listed.
    pub fn contains(&self, ip: u32) -> bool {
        let i = self.merged.partition_point(|&(first, _)| first <= ip);
        i > 0 && self.merged[i - 1].1 >= ip
    }

    /// A listed address (None when the list is empty).
    pub fn draw(&self, r: &mut Rng) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        let (first, last) = self.entries[rng::index(r, self.entries.len())];
        Some(rng::range(r, u64::from(first), u64::from(last) + 1) as u32)
    }

    /// A Tor exit (None when none are known).
    pub fn draw_tor(&self, r: &mut Rng) -> Option<u32> {
        (!self.tor.is_empty()).then(|| self.tor[rng::index(r, self.tor.len())])
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn finish(&mut self) {
        let mut ranges = self.entries.clone();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (first, last) in ranges {
            match merged.last_mut() {
                Some(prev) if u64::from(first) <= u64::from(prev.1) + 1 => {
                    prev.1 = prev.1.max(last);
                }
                _ => merged.push((first, last)),
            }
        }
        self.merged = merged;
    }
}

/// The simulated Internet.
#[derive(Debug)]
pub struct World {
    /// Countries.
    pub countries: Vec<Country>,
    /// Networks.
    pub nets: Vec<Network>,
    /// Every network block, sorted, non-overlapping: (first, last, net).
    blocks: Vec<(u32, u32, u32)>,
    /// MaxMind City test networks (empty without the data directory).
    city_overlay: Vec<OverlayNet>,
    /// MaxMind ASN test networks: (first, last, asn).
    asn_overlay: Vec<(u32, u32, u32)>,
    /// Hosting networks weighted by their country's attack weight: the
    /// home of addresses outside the table (Tor exits, listed networks).
    unlisted_cum: Vec<f64>,
    unlisted: Vec<u32>,
    home_cum: Vec<f64>,
    travel_cum: Vec<f64>,
    attack_cum: Vec<f64>,
    /// Known-bad addresses.
    pub bad: BadList,
}

/// Parses `a.b.c.d/len` (or a bare address) into (first, last).
/// `strict` rejects host bits set below the mask.
pub fn parse_cidr(s: &str, strict: bool) -> Option<(u32, u32)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, l.trim().parse::<u32>().ok()?),
        None => (s, 32),
    };
    if len > 32 {
        return None;
    }
    let ip = u32::from(addr.trim().parse::<Ipv4Addr>().ok()?);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if strict && ip & !mask != 0 {
        return None;
    }
    Some((ip & mask, (ip & mask) | !mask))
}

fn parse_tz(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => (1, s),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    Some(sign * (h.parse::<i32>().ok()? * 60 + m.parse::<i32>().ok()?))
}

/// Reserved and private space: never drawn from a bad list, never flagged.
const RESERVED: &[(&str, u8)] = &[
    ("0.0.0.0", 8),
    ("10.0.0.0", 8),
    ("100.64.0.0", 10),
    ("127.0.0.0", 8),
    ("169.254.0.0", 16),
    ("172.16.0.0", 12),
    ("192.0.0.0", 24),
    ("192.0.2.0", 24),
    ("192.168.0.0", 16),
    ("198.18.0.0", 15),
    ("198.51.100.0", 24),
    ("203.0.113.0", 24),
    ("224.0.0.0", 3),
];

fn is_reserved(first: u32, last: u32) -> bool {
    RESERVED.iter().any(|&(a, len)| {
        let base = a.parse::<Ipv4Addr>().map(u32::from).unwrap_or(0);
        let end = base | (u32::MAX >> len);
        first <= end && last >= base
    })
}

fn table_error(line: usize, message: impl Into<String>) -> SimError {
    SimError::Table {
        line,
        message: message.into(),
    }
}

impl World {
    /// The built-in table alone (no overlay; a stand-in bad list).
    ///
    /// # Errors
    ///
    /// [`SimError::Table`] if the built-in table is malformed (a bug).
    pub fn builtin() -> Result<World, SimError> {
        let mut w = Self::parse(BUILTIN_TABLE)?;
        w.standin_bad_list();
        Ok(w)
    }

    /// Parses a table in the format of `world.txt`.
    fn parse(text: &str) -> Result<World, SimError> {
        let mut countries: Vec<Country> = Vec::new();
        let mut nets: Vec<Network> = Vec::new();
        let mut city_weights: Vec<Vec<f64>> = Vec::new();
        let mut shares: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
        let mut country_tz: Vec<i32> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let raw = raw.trim();
            if raw.is_empty() || raw.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = raw.split('|').map(str::trim).collect();
            let num = |s: &str| -> Result<f64, SimError> {
                s.parse::<f64>()
                    .map_err(|_| table_error(line, format!("bad number `{s}`")))
            };
            if f[0] == "C" {
                if f.len() != 7 {
                    return Err(table_error(line, "a country line has 7 fields"));
                }
                let tz = parse_tz(f[5]).ok_or_else(|| table_error(line, "bad offset"))?;
                countries.push(Country {
                    code: f[1].into(),
                    home_w: num(f[2])?,
                    travel_w: num(f[3])?,
                    attack_w: num(f[4])?,
                    rtt_ms: num(f[6])?,
                    regions: Vec::new(),
                    cities: Vec::new(),
                    city_cum: Vec::new(),
                    gateway_cum: Vec::new(),
                    isps: Vec::new(),
                    isp_cum: Vec::new(),
                    mobiles: Vec::new(),
                    mobile_cum: Vec::new(),
                    hostings: Vec::new(),
                });
                city_weights.push(Vec::new());
                shares.push((Vec::new(), Vec::new()));
                country_tz.push(tz);
                continue;
            }
            let ci = countries
                .len()
                .checked_sub(1)
                .ok_or_else(|| table_error(line, "a region or network line before any country"))?;
            let country_tz = country_tz[ci];
            let country = &mut countries[ci];
            match f[0] {
                "R" if f.len() == 4 => {
                    let tz = if f[2].is_empty() {
                        country_tz
                    } else {
                        parse_tz(f[2]).ok_or_else(|| table_error(line, "bad offset"))?
                    };
                    let region = country.regions.len() as u16;
                    country.regions.push(Region {
                        name: f[1].into(),
                        tz_min: tz,
                    });
                    for item in f[3].split(',') {
                        let (name, w) = item
                            .rsplit_once(':')
                            .ok_or_else(|| table_error(line, "a city is `name:weight`"))?;
                        country.cities.push(City {
                            name: name.trim().into(),
                            region,
                        });
                        city_weights[ci].push(num(w.trim())?);
                    }
                }
                "I" | "M" if f.len() == 5 => {
                    let kind = if f[0] == "I" {
                        NetKind::Isp
                    } else {
                        NetKind::Mobile
                    };
                    let blocks = parse_blocks(f[4], line)?;
                    let id = nets.len() as u32;
                    nets.push(Network::new(kind, f[1], f[2], ci, None, blocks, line)?);
                    if kind == NetKind::Isp {
                        country.isps.push(id);
                        shares[ci].0.push(num(f[3])?);
                    } else {
                        country.mobiles.push(id);
                        shares[ci].1.push(num(f[3])?);
                    }
                }
                "H" if f.len() == 6 => {
                    let blocks = parse_blocks(f[5], line)?;
                    let region = country.region_id(f[3], country_tz);
                    let city = country.city_id(region, f[4]);
                    city_weights[ci].resize(country.cities.len(), 0.0);
                    let id = nets.len() as u32;
                    nets.push(Network::new(
                        NetKind::Hosting,
                        f[1],
                        f[2],
                        ci,
                        Some((region, city)),
                        blocks,
                        line,
                    )?);
                    country.hostings.push(id);
                }
                _ => return Err(table_error(line, format!("unknown line `{raw}`"))),
            }
        }
        for (ci, c) in countries.iter_mut().enumerate() {
            if c.cities.is_empty() || c.isps.is_empty() {
                return Err(table_error(
                    0,
                    format!("country `{}` needs cities and an ISP", c.code),
                ));
            }
            city_weights[ci].resize(c.cities.len(), 0.0);
            c.city_cum = rng::cumulative(city_weights[ci].iter().copied());
            let mut by_weight: Vec<f64> = city_weights[ci].clone();
            by_weight.sort_unstable_by(|a, b| b.total_cmp(a));
            let third = by_weight.get(2).copied().unwrap_or(0.0);
            c.gateway_cum = rng::cumulative(
                city_weights[ci]
                    .iter()
                    .map(|&w| if w >= third && w > 0.0 { w } else { 0.0 }),
            );
            c.isp_cum = rng::cumulative(shares[ci].0.iter().copied());
            c.mobile_cum = rng::cumulative(shares[ci].1.iter().copied());
        }
        let mut blocks: Vec<(u32, u32, u32)> = nets
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.blocks.iter().map(move |&(a, b)| (a, b, i as u32)))
            .collect();
        blocks.sort_unstable();
        for pair in blocks.windows(2) {
            if pair[1].0 <= pair[0].1 {
                return Err(table_error(
                    0,
                    format!(
                        "blocks overlap: {} (`{}`) and {} (`{}`)",
                        Ipv4Addr::from(pair[0].0),
                        nets[pair[0].2 as usize].name,
                        Ipv4Addr::from(pair[1].0),
                        nets[pair[1].2 as usize].name
                    ),
                ));
            }
        }
        let unlisted: Vec<u32> = countries
            .iter()
            .flat_map(|c| c.hostings.iter().copied())
            .collect();
        let unlisted_cum = rng::cumulative(unlisted.iter().map(|&n| {
            let c = &countries[nets[n as usize].country as usize];
            c.attack_w / c.hostings.len().max(1) as f64
        }));
        let home_cum = rng::cumulative(countries.iter().map(|c| c.home_w));
        let travel_cum = rng::cumulative(countries.iter().map(|c| c.travel_w));
        let attack_cum = rng::cumulative(countries.iter().map(|c| c.attack_w));
        Ok(World {
            countries,
            nets,
            blocks,
            city_overlay: Vec::new(),
            asn_overlay: Vec::new(),
            unlisted_cum,
            unlisted,
            home_cum,
            travel_cum,
            attack_cum,
            bad: BadList::default(),
        })
    }

    /// A stand-in known-bad list for runs without the data directory: a
    /// fixed sample of hosting /24s.
    fn standin_bad_list(&mut self) {
        let mut r = rng::seeded(0xBAD_1157);
        let mut bad = BadList::default();
        for _ in 0..400 {
            let net = self.unlisted[rng::pick(&mut r, &self.unlisted_cum)];
            let ip = self.nets[net as usize].draw(&mut r) & 0xFFFF_FF00;
            bad.entries.push((ip, ip | 0xFF));
        }
        bad.finish();
        self.bad = bad;
    }

    /// Loads what the data directory has: MaxMind's City and ASN test
    /// sources as an overlay, FireHOL level 1 and Tor exits as the bad
    /// list. Returns a description of each source used.
    ///
    /// # Errors
    ///
    /// [`SimError`] if a file exists but cannot be read or parsed.
    pub fn load_data(&mut self, dir: &Path) -> Result<Vec<String>, SimError> {
        let mut used = Vec::new();
        let city = dir.join("maxmind/source-data/GeoLite2-City-Test.json");
        if city.is_file() {
            let n = self.load_city_overlay(&city)?;
            used.push(format!("{n} IPv4 networks from {}", city.display()));
        }
        let asn = dir.join("maxmind/source-data/GeoLite2-ASN-Test.json");
        if asn.is_file() {
            let n = self.load_asn_overlay(&asn)?;
            used.push(format!("{n} IPv4 networks from {}", asn.display()));
        }
        let firehol = dir.join("ip-lists/firehol/firehol_level1_2022-01-27.netset");
        let tor = dir.join("ip-lists/tor/tor-exit-nodes.lst");
        let mut bad = BadList::default();
        for (path, is_tor) in [(&firehol, false), (&tor, true)] {
            if !path.is_file() {
                continue;
            }
            let text = read(path)?;
            let before = bad.entries.len();
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let Some((first, last)) = parse_cidr(line, false) else {
                    continue;
                };
                if is_reserved(first, last) {
                    continue;
                }
                bad.entries.push((first, last));
                if is_tor && first == last {
                    bad.tor.push(first);
                }
            }
            used.push(format!(
                "{} entries from {}",
                bad.entries.len() - before,
                path.display()
            ));
        }
        if !bad.entries.is_empty() {
            bad.finish();
            self.bad = bad;
        }
        Ok(used)
    }

    fn load_city_overlay(&mut self, path: &Path) -> Result<usize, SimError> {
        for (first, last, rec) in json_networks(path)? {
            let Some(code) = rec.pointer("/country/iso_code").and_then(|v| v.as_str()) else {
                continue;
            };
            let Some(ci) = self.countries.iter().position(|c| &*c.code == code) else {
                continue;
            };
            let region_name = rec
                .pointer("/subdivisions/0/names/en")
                .and_then(|v| v.as_str());
            let city_name = rec.pointer("/city/names/en").and_then(|v| v.as_str());
            let c = &mut self.countries[ci];
            let tz = c.regions.first().map_or(0, |r| r.tz_min);
            let region = region_name.map_or(NONE, |n| c.region_id(n, tz));
            let city = match (city_name, region) {
                (Some(n), r) if r != NONE => c.city_id(r, n),
                _ => NONE,
            };
            let weights_len = c.cities.len();
            for cum in [&mut c.city_cum, &mut c.gateway_cum] {
                while cum.len() < weights_len {
                    let last = cum.last().copied().unwrap_or(0.0);
                    cum.push(last);
                }
            }
            self.city_overlay.push(OverlayNet {
                first,
                last,
                country: ci as u16,
                region,
                city,
            });
        }
        self.city_overlay.sort_unstable_by_key(|o| o.first);
        Ok(self.city_overlay.len())
    }

    fn load_asn_overlay(&mut self, path: &Path) -> Result<usize, SimError> {
        for (first, last, rec) in json_networks(path)? {
            if let Some(asn) = rec
                .get("autonomous_system_number")
                .and_then(serde_json::Value::as_u64)
            {
                self.asn_overlay.push((first, last, asn as u32));
            }
        }
        self.asn_overlay.sort_unstable();
        Ok(self.asn_overlay.len())
    }

    /// Where `ip` is.
    pub fn geo(&self, ip: u32) -> Geo {
        let asn_override = lookup(&self.asn_overlay, ip, |&(a, b, _)| (a, b)).map(|e| e.2);
        if let Some(o) = lookup(&self.city_overlay, ip, |o| (o.first, o.last)) {
            let asn = asn_override.or_else(|| self.block(ip).map(|n| n.asn));
            return Geo {
                country: o.country,
                region: o.region,
                city: o.city,
                asn: asn.unwrap_or(0),
                kind: self.block(ip).map_or(NetKind::Isp, |n| n.kind),
            };
        }
        let base = u64::from(ip >> 8);
        let (net, listed) = match self.block(ip) {
            Some(n) => (n, true),
            None => {
                let x = rng::mix_unit(base ^ CITY_SALT ^ 0xFFFF);
                let id = self.unlisted[rng::pick_at(
                    &self.unlisted_cum,
                    x * self.unlisted_cum.last().copied().unwrap_or(0.0),
                )];
                (&self.nets[id as usize], false)
            }
        };
        let asn = asn_override.unwrap_or(net.asn);
        if let Some((region, city)) = net.fixed {
            return Geo {
                country: net.country,
                region,
                city,
                asn,
                kind: net.kind,
            };
        }
        let (region, city) = self.place_24(net, base);
        Geo {
            country: net.country,
            region,
            city,
            asn,
            kind: if listed { net.kind } else { NetKind::Hosting },
        }
    }

    /// (region, city) of the /24 `base` (address >> 8) of an ISP or
    /// carrier network, overlay aside.
    fn place_24(&self, net: &Network, base: u64) -> (u16, u16) {
        let c = &self.countries[net.country as usize];
        // Carriers' addresses locate to their gateways in the largest
        // cities; fixed lines anywhere, by population.
        let cum = if net.kind == NetKind::Mobile {
            &c.gateway_cum
        } else {
            &c.city_cum
        };
        let city = rng::pick_at(
            cum,
            rng::mix_unit(base ^ CITY_SALT) * cum.last().copied().unwrap_or(0.0),
        );
        let q = rng::mix_unit(base ^ QUIRK_SALT);
        if q < UNKNOWN_REGION_RATE {
            (NONE, NONE)
        } else if q < UNKNOWN_REGION_RATE + UNKNOWN_CITY_RATE {
            (c.cities[city].region, NONE)
        } else {
            (c.cities[city].region, city as u16)
        }
    }

    /// How `ip` is written: a 10.x placeholder for a few ISP and carrier
    /// /24s, as in the public dataset; otherwise itself. Returns the
    /// address and whether the ASN is written as a placeholder too.
    pub fn written(&self, ip: u32, geo: &Geo) -> (u32, u32) {
        if geo.kind == NetKind::Hosting {
            return (ip, geo.asn);
        }
        let q = rng::mix_unit(u64::from(ip >> 8) ^ PLACEHOLDER_SALT);
        if q < PLACEHOLDER_IP_RATE {
            let h = rng::mix(u64::from(ip >> 8)) as u32 & 0xFFFF;
            ((10 << 24) | (h << 8) | (ip & 0xFF), geo.asn)
        } else if q < PLACEHOLDER_IP_RATE + PLACEHOLDER_ASN_RATE {
            (ip, 500_000 + geo.asn % 100_000)
        } else {
            (ip, geo.asn)
        }
    }

    /// The table's network holding `ip`, if any (ignores the overlay).
    pub fn network(&self, ip: u32) -> Option<&Network> {
        self.block(ip)
    }

    fn block(&self, ip: u32) -> Option<&Network> {
        lookup(&self.blocks, ip, |&(a, b, _)| (a, b)).map(|b| &self.nets[b.2 as usize])
    }

    /// Whether every address of the /24 at `base` has the same geo (no
    /// MaxMind test network cuts through it).
    pub fn uniform_24(&self, base: u32) -> bool {
        let last = base | 0xFF;
        let i = self.city_overlay.partition_point(|o| o.first <= last);
        self.city_overlay[..i]
            .iter()
            .rev()
            .take_while(|o| o.last >= base || o.first >= base)
            .all(|o| o.last < base || (o.first <= base && o.last >= last))
    }

    /// Country code, region and city names for `geo` (`-` when unknown).
    pub fn names(&self, geo: &Geo) -> (&str, &str, &str) {
        let c = &self.countries[geo.country as usize];
        let region = c.regions.get(geo.region as usize).map_or("-", |r| &*r.name);
        let city = c.cities.get(geo.city as usize).map_or("-", |x| &*x.name);
        (&c.code, region, city)
    }

    /// UTC offset (minutes) at `geo`.
    pub fn tz_min(&self, geo: &Geo) -> i32 {
        let c = &self.countries[geo.country as usize];
        c.regions
            .get(geo.region as usize)
            .or_else(|| c.regions.first())
            .map_or(0, |r| r.tz_min)
    }

    /// A home country for a new user.
    pub fn draw_home_country(&self, r: &mut Rng) -> u16 {
        rng::pick(r, &self.home_cum) as u16
    }

    /// A travel destination other than `home`.
    pub fn draw_travel_country(&self, r: &mut Rng, home: u16) -> u16 {
        for _ in 0..16 {
            let c = rng::pick(r, &self.travel_cum) as u16;
            if c != home {
                return c;
            }
        }
        home
    }

    /// An attack-origin country.
    pub fn draw_attack_country(&self, r: &mut Rng) -> u16 {
        rng::pick(r, &self.attack_cum) as u16
    }

    /// A home ISP of `country`, by market share.
    pub fn draw_isp(&self, r: &mut Rng, country: u16) -> u32 {
        let c = &self.countries[country as usize];
        c.isps[rng::pick(r, &c.isp_cum)]
    }

    /// A uniform /24 (its base) of a home ISP of `country`, by market share,
    /// whose geo is uniform.
    pub fn draw_isp_24(&self, r: &mut Rng, country: u16) -> u32 {
        let net = self.draw_isp(r, country);
        self.draw_24_in(r, net)
    }

    /// A /24 of network `net` whose geo has the region and city of `want`,
    /// or None if many draws find none.
    pub fn draw_24_in_at(&self, r: &mut Rng, net: u32, want: &Geo) -> Option<u32> {
        let n = &self.nets[net as usize];
        (0..2000).find_map(|_| {
            let base = self.draw_24_in(r, net);
            // The cheap test first; the full lookup (overlay) to confirm.
            if n.fixed.is_none()
                && self.place_24(n, u64::from(base >> 8)) != (want.region, want.city)
            {
                return None;
            }
            let g = self.geo(base | 1);
            (g.region == want.region && g.city == want.city).then_some(base)
        })
    }

    /// A uniform-geo /24 of network `net`.
    pub fn draw_24_in(&self, r: &mut Rng, net: u32) -> u32 {
        let n = &self.nets[net as usize];
        let mut base = n.draw(r) & 0xFFFF_FF00;
        for _ in 0..32 {
            if self.uniform_24(base) {
                break;
            }
            base = n.draw(r) & 0xFFFF_FF00;
        }
        base
    }

    /// A /24 of a home ISP of `country` whose geo is `want` (same region
    /// and city); falls back to any /24 of the country after many tries.
    pub fn draw_isp_24_at(&self, r: &mut Rng, country: u16, want: &Geo) -> u32 {
        for _ in 0..4 {
            let net = self.draw_isp(r, country);
            if let Some(base) = self.draw_24_in_at(r, net, want) {
                return base;
            }
        }
        self.draw_isp_24(r, country)
    }

    /// A mobile carrier of `country` (None if it has none).
    pub fn draw_carrier(&self, r: &mut Rng, country: u16) -> Option<u32> {
        let c = &self.countries[country as usize];
        (!c.mobiles.is_empty()).then(|| c.mobiles[rng::pick(r, &c.mobile_cum)])
    }

    /// A CGNAT-style address of carrier `net`: drawn from a small pool of
    /// /24s at the start of each block, so many users share addresses.
    pub fn draw_mobile_ip(&self, r: &mut Rng, net: u32) -> u32 {
        let n = &self.nets[net as usize];
        let (first, last) = n.blocks[rng::index(r, n.blocks.len())];
        let n24 = ((u64::from(last) - u64::from(first) + 1) >> 8).clamp(1, 256);
        let base = first + ((rng::range(r, 0, n24) as u32) << 8);
        base | rng::range(r, 1, 255) as u32
    }

    /// A hosting address in `country`, or anywhere when it has none.
    pub fn draw_hosting_ip(&self, r: &mut Rng, country: Option<u16>) -> u32 {
        let net = match country.map(|c| &self.countries[c as usize].hostings) {
            Some(h) if !h.is_empty() => h[rng::index(r, h.len())],
            _ => self.unlisted[rng::pick(r, &self.unlisted_cum)],
        };
        self.nets[net as usize].draw(r)
    }

    /// A residential (ISP or carrier) address in `country`.
    pub fn draw_residential_ip(&self, r: &mut Rng, country: u16) -> u32 {
        if rng::chance(r, 0.3)
            && let Some(m) = self.draw_carrier(r, country)
        {
            return self.draw_mobile_ip(r, m);
        }
        self.draw_isp_24(r, country) | rng::range(r, 1, 255) as u32
    }
}

impl Country {
    fn region_id(&mut self, name: &str, tz: i32) -> u16 {
        if let Some(i) = self.regions.iter().position(|r| &*r.name == name) {
            return i as u16;
        }
        self.regions.push(Region {
            name: name.into(),
            tz_min: tz,
        });
        (self.regions.len() - 1) as u16
    }

    fn city_id(&mut self, region: u16, name: &str) -> u16 {
        if let Some(i) = self
            .cities
            .iter()
            .position(|c| c.region == region && &*c.name == name)
        {
            return i as u16;
        }
        self.cities.push(City {
            name: name.into(),
            region,
        });
        (self.cities.len() - 1) as u16
    }
}

impl Network {
    fn new(
        kind: NetKind,
        asn: &str,
        name: &str,
        country: usize,
        fixed: Option<(u16, u16)>,
        blocks: Vec<(u32, u32)>,
        line: usize,
    ) -> Result<Network, SimError> {
        let asn = asn
            .parse::<u32>()
            .map_err(|_| table_error(line, format!("bad ASN `{asn}`")))?;
        let cum = rng::cumulative(
            blocks
                .iter()
                .map(|&(a, b)| (u64::from(b) - u64::from(a) + 1) as f64),
        );
        Ok(Network {
            kind,
            asn,
            name: name.into(),
            country: country as u16,
            fixed,
            blocks,
            cum,
        })
    }

    /// A uniform address of the network, avoiding .0 and .255.
    pub fn draw(&self, r: &mut Rng) -> u32 {
        let (first, last) = self.blocks[rng::pick(r, &self.cum)];
        let ip = rng::range(r, u64::from(first), u64::from(last) + 1) as u32;
        match ip & 0xFF {
            0 => ip | 1,
            255 => ip - 1,
            _ => ip,
        }
    }
}

fn parse_blocks(s: &str, line: usize) -> Result<Vec<(u32, u32)>, SimError> {
    s.split(',')
        .map(|p| {
            let p = p.trim();
            parse_cidr(p, true)
                .filter(|&(a, b)| b - a >= 255)
                .ok_or_else(|| {
                    table_error(
                        line,
                        format!("bad block `{p}` (want an aligned /24 or larger)"),
                    )
                })
        })
        .collect()
}

fn lookup<T>(sorted: &[T], ip: u32, range: impl Fn(&T) -> (u32, u32)) -> Option<&T> {
    let i = sorted.partition_point(|e| range(e).0 <= ip);
    let e = sorted.get(i.checked_sub(1)?)?;
    (range(e).1 >= ip).then_some(e)
}

fn read(path: &Path) -> Result<String, SimError> {
    std::fs::read_to_string(path).map_err(|source| SimError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The IPv4 networks of a MaxMind `source-data` JSON file (a list of
/// one-key objects, network → record).
fn json_networks(path: &Path) -> Result<Vec<(u32, u32, serde_json::Value)>, SimError> {
    let text = read(path)?;
    let list: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(&text)
        .map_err(|source| SimError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(list
        .into_iter()
        .flat_map(|m| m.into_iter())
        .filter_map(|(net, rec)| {
            let (a, b) = parse_cidr(&net, false)?;
            Some((a, b, rec))
        })
        .collect())
}
