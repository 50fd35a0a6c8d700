//! The generator: users and their sessions, attack campaigns, and the
//! time-ordered stream.
//!
//! Days are generated in order. A user's logins for a local day land in
//! UTC between 14 h before that day and 12 h after it ends, and campaigns
//! start inside their UTC day, so once day `d` is generated nothing later
//! can fall before `start(d + 1) − 14 h`: rows up to there are sorted and
//! written, the rest wait. Memory: the users, one bucket entry per user,
//! and about a day of rows.

use std::io::Write;

use super::agents::{Agents, Kind};
use super::output::{NO_DEVICE, NO_RTT, Out, Row};
use super::rng::{self, Rng};
use super::world::{Geo, NetKind, World};
use super::{Label, SimConfig, SimError, Summary};

const DAY_MS: i64 = 86_400_000;
const MIN_MS: i64 = 60_000;
/// Latest local-time offset (UTC+14): how far before its UTC day a local
/// day can start.
const MAX_AHEAD_MS: i64 = 14 * 3_600_000;

/// Relative login activity by local hour.
const DIURNAL: [f64; 24] = [
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4.0, 5.0, 5.0, 4.8, 4.5, 4.5, 4.6, 4.6, 4.5, 4.5, 5.0,
    5.5, 6.0, 5.5, 4.0, 2.2,
];

/// Share of rows whose RTT is not recorded.
const EMPTY_RTT_RATE: f64 = 0.015;
/// Share of users with a device whose browser string does not parse.
const GARBAGE_UA_USERS: f64 = 0.002;
/// Share of legitimate logins that send no device id (a private window,
/// cookies blocked).
const NO_DEVICE_ID_LOGINS: f64 = 0.03;
/// Chance per login that a device without a bound key loses its id (cookies
/// cleared, app reinstalled) and gets a new one.
const DEVICE_ID_RESET: f64 = 1.0 / 150.0;
/// Share of cookie-less bot attempts (stuffing, spray, brute force) that
/// send no device id; the rest send a fresh one each time.
const BOT_NO_DEVICE_ID: f64 = 0.5;

#[derive(Clone, Copy, Debug)]
struct Device {
    ua: u32,
    kind: Kind,
    bumps: u8,
    /// Logins so far (what an observer of the victim would copy).
    uses: u16,
    /// Device id number (see [`Row::device`]).
    id: u32,
    /// It holds a key the login service verifies.
    bound: bool,
}

/// What an attacker's client sends: its browser string and device id.
#[derive(Clone, Copy, Debug)]
struct Client {
    ua: u32,
    device: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct Trip {
    start: u32,
    end: u32,
    /// /24 of the hotel or host's network at the destination.
    hotel: u32,
    /// Carrier at the destination (u32::MAX: none).
    local_carrier: u32,
    domestic: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Privacy {
    None,
    Vpn(u16),
    Tor,
}

#[derive(Debug)]
struct User {
    id: i64,
    home: Geo,
    tz_min: i32,
    nets: [u32; 3],
    n_nets: u8,
    home_ip: u32,
    carrier: u32,
    work_ip: u32,
    devices: [Device; 3],
    n_dev: u8,
    p_active: f32,
    extra: f32,
    pref_min: u16,
    mobile_share: f32,
    typo: f32,
    privacy: Privacy,
    trips_per_year: f32,
    trip: Option<Trip>,
    next_trip: u32,
    rows: u32,
    /// The user's devices hold keys the login service verifies.
    bound: bool,
}

const NO_CARRIER: u32 = u32::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Home,
    Mobile,
    Work,
    Hotel,
    Roaming,
    LocalSim,
}

struct Gen<'a> {
    cfg: &'a SimConfig,
    world: &'a World,
    agents: &'a mut Agents,
    r: Rng,
    /// Device ids and bindings draw from their own stream, so the rest of
    /// the data for a seed is what it was before they existed.
    rd: Rng,
    next_device: u32,
    users: Vec<User>,
    pending: Vec<Row>,
    seq: u64,
    start_ms: i64,
    end_ms: i64,
    diurnal_cum: Vec<f64>,
    summary: Summary,
}

pub fn generate<W: Write>(
    cfg: &SimConfig,
    world: &World,
    agents: &mut Agents,
    out: W,
) -> Result<Summary, SimError> {
    let start_ms = cfg.start_day * DAY_MS;
    let days = cfg.days as usize;
    let mut g = Gen {
        cfg,
        world,
        agents,
        r: rng::seeded(cfg.seed),
        rd: rng::seeded(rng::mix(cfg.seed ^ 0x6465_7669_6365_7321)),
        next_device: NO_DEVICE,
        users: Vec::with_capacity(cfg.users as usize),
        pending: Vec::new(),
        seq: 0,
        start_ms,
        end_ms: start_ms + i64::from(cfg.days) * DAY_MS,
        diurnal_cum: rng::cumulative(DIURNAL),
        summary: Summary::default(),
    };
    let mut out = Out::new(out)?;

    // Each user's first active day; later days are scheduled as they come.
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); days];
    for i in 0..cfg.users {
        let mut u = g.new_user(i);
        u.bound = rng::chance(&mut g.rd, cfg.bound_share);
        for d in u.devices.iter_mut().take(usize::from(u.n_dev)) {
            d.id = g.fresh_device();
            d.bound = u.bound;
        }
        let first = rng::geometric(&mut g.r, f64::from(u.p_active));
        let first = if first < days as u64 {
            first
        } else {
            rng::range(&mut g.r, 0, days as u64)
        };
        buckets[first as usize].push(i);
        g.users.push(u);
    }

    let mut budget = Budget::new(cfg);
    for d in 0..days {
        let today = std::mem::take(&mut buckets[d]);
        let before = g.pending.len();
        for &ui in &today {
            g.login_day(ui, d as u32);
            let gap = 1 + rng::geometric(&mut g.r, f64::from(g.users[ui as usize].p_active));
            let next = d as u64 + gap;
            if next < days as u64 {
                buckets[next as usize].push(ui);
            }
        }
        budget.legit += (g.pending.len() - before) as u64;
        g.attacks_for_day(d as u32, d + 1 == days, &mut budget);

        let watermark = g.start_ms + (d as i64 + 1) * DAY_MS - MAX_AHEAD_MS;
        let last = d + 1 == days;
        g.flush(&mut out, if last { i64::MAX } else { watermark })?;
    }
    out.finish()?;
    let mut s = g.summary;
    s.users = g.users.len() as u64;
    for u in &g.users {
        let b = match u.rows {
            0..=4 => 0,
            5..=12 => 1,
            13..=39 => 2,
            _ => 3,
        };
        s.history[b] += 1;
    }
    Ok(s)
}

/// Attack rows owed per label: a share of the legitimate rows so far.
struct Budget {
    legit: u64,
    created: [u64; 6],
    share: [f64; 6],
}

impl Budget {
    fn new(cfg: &SimConfig) -> Budget {
        let total: f64 = cfg.mix.iter().sum();
        let ratio = cfg.attack_rate / (1.0 - cfg.attack_rate);
        let mut share = [0.0; 6];
        if total > 0.0 {
            for (s, w) in share.iter_mut().zip(cfg.mix) {
                *s = ratio * w / total;
            }
        }
        Budget {
            legit: 0,
            created: [0; 6],
            share,
        }
    }

    fn target(&self, l: usize) -> u64 {
        (self.legit as f64 * self.share[l]).round() as u64
    }
}

impl Gen<'_> {
    /// A device id never used before.
    fn fresh_device(&mut self) -> u32 {
        self.next_device = self.next_device.wrapping_add(1).max(1);
        self.next_device
    }

    /// A bot's device id: none, or a fresh one (no cookie jar).
    fn bot_device(&mut self) -> u32 {
        if rng::chance(&mut self.rd, BOT_NO_DEVICE_ID) {
            NO_DEVICE
        } else {
            self.fresh_device()
        }
    }

    fn push(&mut self, mut row: Row) {
        row.seq = self.seq;
        self.seq += 1;
        if row.label.is_none() && row.user_index != u32::MAX {
            self.users[row.user_index as usize].rows += 1;
        }
        self.pending.push(row);
    }

    fn flush<W: Write>(&mut self, out: &mut Out<W>, watermark: i64) -> Result<(), SimError> {
        self.pending.sort_unstable_by_key(|r| (r.t, r.seq));
        let n = self.pending.partition_point(|r| r.t < watermark);
        for row in self.pending.drain(..n) {
            out.write(&row, self.world, self.agents, &mut self.summary)?;
        }
        Ok(())
    }

    fn new_user(&mut self, i: u32) -> User {
        let r = &mut self.r;
        let w = self.world;
        let id = rng::mix(self.cfg.seed ^ rng::mix(u64::from(i))) as i64;
        let country = w.draw_home_country(r);
        let isp = w.draw_isp(r, country);
        let first = w.draw_24_in(r, isp);
        let home = w.geo(first | 1);
        let mut nets = [first; 3];
        let mut n_nets = 1u8;
        let extra = usize::from(rng::chance(r, 0.35)) + usize::from(rng::chance(r, 0.15));
        for _ in 0..extra {
            if let Some(b) = w.draw_24_in_at(r, isp, &home) {
                nets[n_nets as usize] = b;
                n_nets += 1;
            }
        }
        let home_ip = first | rng::range(r, 2, 255) as u32;
        let carrier = if rng::chance(r, 0.9) {
            w.draw_carrier(r, country).unwrap_or(NO_CARRIER)
        } else {
            NO_CARRIER
        };
        let work_ip = if rng::chance(r, 0.45) {
            w.draw_isp_24_at(r, country, &home) | rng::range(r, 2, 255) as u32
        } else {
            0
        };

        let has_mobile = rng::chance(r, 0.85);
        let has_desktop = rng::chance(r, 0.65) || !has_mobile;
        let has_tablet = rng::chance(r, 0.1);
        let mut kinds = Vec::with_capacity(3);
        if has_desktop {
            kinds.push(Kind::Desktop);
        }
        if has_mobile {
            kinds.push(Kind::Mobile);
        }
        if has_tablet {
            kinds.push(Kind::Tablet);
        }
        let garbage = rng::chance(r, GARBAGE_UA_USERS);
        let mut devices = [Device {
            ua: 0,
            kind: Kind::Desktop,
            bumps: 0,
            uses: 0,
            id: NO_DEVICE,
            bound: false,
        }; 3];
        for (slot, &kind) in devices.iter_mut().zip(&kinds) {
            *slot = Device {
                ua: self.agents.draw_device(r, kind),
                kind,
                bumps: 0,
                uses: 0,
                id: NO_DEVICE,
                bound: false,
            };
        }
        if garbage {
            devices[0].ua = self.agents.draw_garbage(r);
        }

        // Daily login rate: log-normal, median 0.08/day, capped at 6.
        let rate = rng::lognormal(r, 0.08, 1.5).min(6.0);
        let p_active = rate.min(0.9);
        let extra_logins = (rate / p_active - 1.0).max(0.0);
        let hour = rng::pick(r, &self.diurnal_cum) as u16;
        let pref_min = hour * 60 + rng::range(r, 0, 60) as u16;
        let privacy = if rng::chance(r, 0.025) {
            let vpn_country = w.draw_travel_country(r, country);
            Privacy::Vpn(if rng::chance(r, 0.5) {
                country
            } else {
                vpn_country
            })
        } else if rng::chance(r, 0.002) && !w.bad.is_empty() {
            Privacy::Tor
        } else {
            Privacy::None
        };
        let travels = rng::chance(r, 0.3);
        let trips_per_year = if travels {
            rng::range(r, 1, 6) as f32
        } else {
            0.0
        };
        let next_trip = if travels {
            rng::exponential(r, 365.0 / f64::from(trips_per_year)) as u32
        } else {
            u32::MAX
        };
        User {
            id,
            tz_min: w.tz_min(&home),
            home,
            nets,
            n_nets,
            home_ip,
            carrier,
            work_ip,
            devices,
            n_dev: kinds.len() as u8,
            p_active: p_active as f32,
            extra: extra_logins as f32,
            pref_min,
            mobile_share: if has_mobile && carrier != NO_CARRIER {
                (0.1 + 0.6 * rng::unit(r)) as f32
            } else {
                0.0
            },
            typo: (0.08 * rng::unit(r)) as f32,
            privacy,
            trips_per_year,
            trip: None,
            next_trip,
            rows: 0,
            bound: false,
        }
    }

    /// A local minute of day for user `ui`: near the preferred hour, or
    /// anywhere along the population's daily curve.
    fn local_ms(&mut self, ui: u32) -> i64 {
        let pref = self.users[ui as usize].pref_min;
        let minutes = if rng::chance(&mut self.r, 0.6) {
            let m = f64::from(pref) + 75.0 * rng::normal(&mut self.r);
            m.rem_euclid(1440.0)
        } else {
            let h = rng::pick(&mut self.r, &self.diurnal_cum) as f64;
            h * 60.0 + 60.0 * rng::unit(&mut self.r)
        };
        (minutes * 60_000.0) as i64 + rng::range(&mut self.r, 0, 60_000) as i64
    }

    fn update_trip(&mut self, ui: u32, d: u32) {
        let w = self.world;
        let u = &self.users[ui as usize];
        if let Some(t) = u.trip
            && d < t.end
        {
            return;
        }
        if u.next_trip > d {
            if u.trip.is_some() {
                self.users[ui as usize].trip = None;
            }
            return;
        }
        let (country, per_year) = (u.home.country, u.trips_per_year);
        let r = &mut self.r;
        let domestic = rng::chance(r, 0.45);
        let dest = if domestic {
            country
        } else {
            w.draw_travel_country(r, country)
        };
        let mut hotel = w.draw_isp_24(r, dest);
        if domestic {
            for _ in 0..16 {
                if w.geo(hotel | 1).city != self.users[ui as usize].home.city {
                    break;
                }
                hotel = w.draw_isp_24(r, dest);
            }
        }
        let len = 2 + rng::geometric(r, 0.2).min(20) as u32;
        let trip = Trip {
            start: d,
            end: d + len,
            hotel,
            local_carrier: w.draw_carrier(r, dest).unwrap_or(NO_CARRIER),
            domestic,
        };
        let gap = rng::exponential(r, 365.0 / f64::from(per_year.max(0.1))) as u32;
        let u = &mut self.users[ui as usize];
        u.trip = Some(trip);
        u.next_trip = trip.end + gap;
    }

    fn login_day(&mut self, ui: u32, d: u32) {
        self.update_trip(ui, d);
        let extra = f64::from(self.users[ui as usize].extra);
        let k = 1 + rng::poisson(&mut self.r, extra).min(40);
        let mut times: Vec<i64> = (0..k).map(|_| self.local_ms(ui)).collect();
        times.sort_unstable();
        for local in times {
            self.session(ui, d, local);
        }
    }

    fn session(&mut self, ui: u32, d: u32, local_ms: i64) {
        let w = self.world;
        let day = self.cfg.start_day + i64::from(d);
        let weekend = (day + 3).rem_euclid(7) >= 5;
        let hour = local_ms / 3_600_000;
        let u = &self.users[ui as usize];
        let trip = u.trip.filter(|t| t.start <= d && d < t.end);
        let r = &mut self.r;

        // Where the user is, and over what network.
        let (ctx, mut ip) = match trip {
            Some(t) => {
                let x = rng::unit(r);
                if x < 0.5 || (u.carrier == NO_CARRIER && t.local_carrier == NO_CARRIER) {
                    (Ctx::Hotel, t.hotel | rng::range(r, 2, 255) as u32)
                } else if (x < 0.8 || t.domestic || t.local_carrier == NO_CARRIER)
                    && u.carrier != NO_CARRIER
                {
                    (Ctx::Roaming, w.draw_mobile_ip(r, u.carrier))
                } else if t.local_carrier != NO_CARRIER {
                    (Ctx::LocalSim, w.draw_mobile_ip(r, t.local_carrier))
                } else {
                    (Ctx::Hotel, t.hotel | rng::range(r, 2, 255) as u32)
                }
            }
            None => {
                if u.work_ip != 0 && !weekend && (8..17).contains(&hour) && rng::chance(r, 0.55) {
                    (Ctx::Work, u.work_ip)
                } else if rng::chance(r, f64::from(u.mobile_share)) {
                    (Ctx::Mobile, w.draw_mobile_ip(r, u.carrier))
                } else {
                    (Ctx::Home, u.home_ip)
                }
            }
        };
        match u.privacy {
            Privacy::Vpn(c) if rng::chance(r, 0.6) => ip = w.draw_hosting_ip(r, Some(c)),
            Privacy::Tor if rng::chance(r, 0.4) => {
                if let Some(t) = w.bad.draw_tor(r) {
                    ip = t;
                }
            }
            _ => {}
        }
        // Dynamic home address: now and then a new lease in one of the /24s.
        if ctx == Ctx::Home && rng::chance(r, 0.03) {
            let net = u.nets[rng::index(r, usize::from(u.n_nets))];
            let new_ip = net | rng::range(r, 2, 255) as u32;
            self.users[ui as usize].home_ip = new_ip;
            ip = new_ip;
        }

        // Which device.
        let u = &self.users[ui as usize];
        let devs = &u.devices[..usize::from(u.n_dev)];
        let want = match ctx {
            Ctx::Mobile | Ctx::Roaming | Ctx::LocalSim => Some(Kind::Mobile),
            Ctx::Work => Some(Kind::Desktop),
            Ctx::Hotel if rng::chance(r, 0.6) => Some(Kind::Mobile),
            _ => None,
        };
        let di = want
            .and_then(|k| devs.iter().position(|d| d.kind == k))
            .unwrap_or_else(|| rng::index(r, devs.len()));

        // Browser upgrades and replaced devices.
        if rng::chance(r, 1.0 / 60.0) && devs[di].bumps < 4 {
            let ua = devs[di].ua;
            if let Some(new) = self.agents.upgrade(ua) {
                let dev = &mut self.users[ui as usize].devices[di];
                dev.ua = new;
                dev.bumps += 1;
            }
        } else if rng::chance(&mut self.r, 1.0 / 400.0) {
            let kind = self.users[ui as usize].devices[di].kind;
            let ua = self.agents.draw_device(&mut self.r, kind);
            let id = self.fresh_device();
            let bound = self.users[ui as usize].bound;
            self.users[ui as usize].devices[di] = Device {
                ua,
                kind,
                bumps: 0,
                uses: 0,
                id,
                bound,
            };
        }
        if !self.users[ui as usize].devices[di].bound && rng::chance(&mut self.rd, DEVICE_ID_RESET)
        {
            self.users[ui as usize].devices[di].id = self.fresh_device();
        }
        let (device, bound) = if rng::chance(&mut self.rd, NO_DEVICE_ID_LOGINS) {
            (NO_DEVICE, false)
        } else {
            let d = &self.users[ui as usize].devices[di];
            (d.id, d.bound)
        };
        let dev = &mut self.users[ui as usize].devices[di];
        dev.uses = dev.uses.saturating_add(1);
        let u = &self.users[ui as usize];
        let ua = u.devices[di].ua;
        let uid = u.id;
        let typo = f64::from(u.typo);
        let tz = match trip {
            Some(t) => w.tz_min(&w.geo(t.hotel | 1)),
            None => u.tz_min,
        };

        let t = self.within(
            self.start_ms + i64::from(d) * DAY_MS + local_ms - i64::from(tz) * MIN_MS,
            10 * MIN_MS,
        );
        let mobile = matches!(ctx, Ctx::Mobile | Ctx::Roaming | Ctx::LocalSim);
        let geo = w.geo(ip);
        let row = |g: &mut Gen<'_>, t: i64, success: bool| {
            let rtt = g.rtt(&geo, mobile);
            g.push(Row {
                t,
                seq: 0,
                user: uid,
                user_index: ui,
                ip,
                geo,
                ua,
                rtt,
                success,
                device,
                bound,
                label: None,
            });
        };
        let r = &mut self.r;
        if rng::chance(r, 0.004) {
            // Gave up: one or two failures, no success.
            let n = 1 + u64::from(rng::chance(r, 0.4));
            let mut at = t;
            for _ in 0..n {
                row(self, at, false);
                at += rng::range(&mut self.r, 4_000, 40_000) as i64;
            }
        } else if rng::chance(r, typo) {
            let n = 1 + u64::from(rng::chance(r, 0.25));
            let mut at = t;
            for _ in 0..n {
                row(self, at, false);
                at += rng::range(&mut self.r, 4_000, 60_000) as i64;
            }
            row(self, at, true);
        } else {
            row(self, t, true);
        }
    }

    /// `t` moved into [start, end − margin]: a local time that falls
    /// before the period moves a day later, one after it a day earlier
    /// (both stay above the last flush's watermark); a one-day period
    /// wraps.
    fn within(&self, t: i64, margin: i64) -> i64 {
        let last = self.end_ms - margin;
        let t = if t < self.start_ms {
            t + DAY_MS
        } else if t > last {
            t - DAY_MS
        } else {
            t
        };
        if t < self.start_ms || t > last {
            self.start_ms + (t - self.start_ms).rem_euclid((last - self.start_ms).max(1))
        } else {
            t
        }
    }

    /// Round-trip time for an address: the country's median, spread,
    /// mobile latency on top, rare huge outliers, and some not recorded.
    fn rtt(&mut self, geo: &Geo, mobile: bool) -> u32 {
        let r = &mut self.r;
        if rng::chance(r, EMPTY_RTT_RATE) {
            return NO_RTT;
        }
        let base = self.world.countries[geo.country as usize].rtt_ms;
        let mut ms = base * rng::lognormal(r, 1.0, 0.25)
            + if mobile {
                20.0 + rng::exponential(r, 25.0)
            } else {
                rng::exponential(r, 6.0)
            };
        if geo.kind == NetKind::Hosting {
            ms *= 0.8;
        }
        if rng::chance(r, 0.002) {
            ms *= rng::range(r, 10, 300) as f64;
        }
        ms.round().max(1.0) as u32
    }

    fn attacks_for_day(&mut self, d: u32, last_day: bool, b: &mut Budget) {
        if self.users.is_empty() {
            return;
        }
        for label in Label::ALL {
            let l = label as usize;
            if b.share[l] <= 0.0 {
                continue;
            }
            let target = b.target(l);
            // Keep one campaign from swallowing many days of budget.
            let daily = target as f64 / f64::from(d + 1);
            let cap = (2.0 * daily).max(min_size(label) as f64) as u64;
            while b.created[l] < target {
                let mut size = self.campaign_size(label).min(cap);
                if last_day {
                    size = size.min(target - b.created[l]);
                } else if b.created[l] + size / 2 > target {
                    // Owe at least half a campaign before starting one, so
                    // the running total straddles the target; the last day
                    // settles the rest exactly.
                    break;
                }
                let made = self.campaign(label, d, size.max(1));
                b.created[l] += made.max(1);
                self.summary.campaigns[l] += 1;
            }
        }
    }

    fn campaign_size(&mut self, label: Label) -> u64 {
        let r = &mut self.r;
        match label {
            Label::Naive | Label::Vpn => {
                1 + u64::from(rng::chance(r, 0.4)) + u64::from(rng::chance(r, 0.3))
            }
            Label::Targeted => 1 + u64::from(rng::chance(r, 0.35)),
            Label::Stuffing => rng::lognormal(r, 400.0, 1.0).clamp(30.0, 20_000.0) as u64,
            Label::Spray => rng::lognormal(r, 150.0, 0.8).clamp(20.0, 3_000.0) as u64,
            Label::Bruteforce => rng::lognormal(r, 60.0, 0.9).clamp(10.0, 1_000.0) as u64,
        }
    }

    fn victim(&mut self) -> u32 {
        rng::index(&mut self.r, self.users.len()) as u32
    }

    fn attack_row(
        &mut self,
        t: i64,
        target: Option<u32>,
        ip: u32,
        client: Client,
        success: bool,
        label: Label,
    ) {
        let Client { ua, device } = client;
        let (user, user_index) = match target {
            Some(ui) => (self.users[ui as usize].id, ui),
            None => (
                rng::mix(rng::unit(&mut self.r).to_bits() ^ self.seq) as i64,
                u32::MAX,
            ),
        };
        let geo = self.world.geo(ip);
        let rtt = self.rtt(&geo, false);
        self.push(Row {
            t,
            seq: 0,
            user,
            user_index,
            ip,
            geo,
            ua,
            rtt,
            success: success && target.is_some(),
            device,
            bound: false,
            label: Some(label),
        });
    }

    /// An address for an untargeted attacker: on the bad list, hosting, or
    /// a residential proxy, in an attack-origin country.
    fn attacker_ip(&mut self, p_bad: f64, p_hosting: f64) -> u32 {
        let w = self.world;
        let r = &mut self.r;
        if rng::chance(r, p_bad)
            && let Some(ip) = w.bad.draw(r)
        {
            return ip;
        }
        let c = w.draw_attack_country(r);
        if rng::chance(r, p_hosting) {
            w.draw_hosting_ip(r, Some(c))
        } else {
            w.draw_residential_ip(r, c)
        }
    }

    /// Times of `n` attempts from `t0`: gaps of `min_gap` plus an
    /// exponential with mean `mean_ms`, compressed if needed so the last
    /// lands a second before the period ends.
    fn schedule(&mut self, t0: i64, n: u64, mean_ms: f64, min_gap: i64) -> Vec<i64> {
        let mut times = Vec::with_capacity(n as usize);
        let mut t = t0;
        for _ in 0..n {
            times.push(t);
            t += min_gap + rng::exponential(&mut self.r, mean_ms) as i64;
        }
        let limit = self.end_ms - 1000;
        let span = times.last().map_or(0, |&l| l - t0);
        if t0 + span > limit && span > 0 {
            let factor = (limit - t0).max(0) as f64 / span as f64;
            for x in &mut times {
                *x = t0 + ((*x - t0) as f64 * factor) as i64;
            }
        }
        times
    }

    /// Generates one campaign of about `size` rows starting on day `d`;
    /// returns the rows made.
    fn campaign(&mut self, label: Label, d: u32, size: u64) -> u64 {
        let day0 = self.start_ms + i64::from(d) * DAY_MS;
        let t0 = day0 + rng::range(&mut self.r, 0, DAY_MS as u64) as i64;
        let t0 = if t0 > self.end_ms - 120_000 {
            t0 - DAY_MS / 2
        } else {
            t0
        };
        match label {
            Label::Naive | Label::Vpn | Label::Targeted => self.single_victim(label, d, t0, size),
            Label::Stuffing => self.stuffing(t0, size),
            Label::Spray => self.spray(t0, size),
            Label::Bruteforce => self.bruteforce(t0, size),
        }
    }

    fn single_victim(&mut self, label: Label, d: u32, t0: i64, n: u64) -> u64 {
        let w = self.world;
        let v = self.victim();
        let victim = &self.users[v as usize];
        let main = victim.devices[..usize::from(victim.n_dev)]
            .iter()
            .max_by_key(|d| d.uses)
            .copied()
            .unwrap_or(victim.devices[0]);
        let main_device = main.ua;
        let (home, victim_ua, tz) = (victim.home, main_device, victim.tz_min);
        // A targeted attacker copies the main device's id (a stolen cookie,
        // a cloned installation id) but not its key; the others bring their
        // own browser.
        let device = match label {
            Label::Targeted => main.id,
            _ => self.fresh_device(),
        };
        let (ip, ua, p_password, t0) = match label {
            Label::Naive => {
                let ip = self.attacker_ip(0.35, 0.5);
                (ip, self.agents.draw_common(&mut self.r), 0.10, t0)
            }
            Label::Vpn => {
                let ip = w.draw_hosting_ip(&mut self.r, Some(home.country));
                (ip, self.agents.draw_common(&mut self.r), 0.15, t0)
            }
            _ => {
                // In the victim's city, at the victim's daytime, with the
                // victim's browser and OS family.
                let ip = w.draw_isp_24_at(&mut self.r, home.country, &home)
                    | rng::range(&mut self.r, 2, 255) as u32;
                let ua = self.agents.draw_like(&mut self.r, victim_ua);
                let local = self.local_ms(v);
                let t = self.within(
                    self.start_ms + i64::from(d) * DAY_MS + local - i64::from(tz) * MIN_MS,
                    2 * MIN_MS,
                );
                (ip, ua, 0.35, t)
            }
        };
        let has_password = rng::chance(&mut self.r, p_password);
        let times = self.schedule(t0, n, 40_000.0, 3_000);
        for (i, &t) in (0u64..).zip(&times) {
            let success = has_password && (i + 1 == n || rng::chance(&mut self.r, 0.7));
            self.attack_row(t, Some(v), ip, Client { ua, device }, success, label);
            if success {
                return i + 1;
            }
        }
        n
    }

    fn stuffing(&mut self, t0: i64, n: u64) -> u64 {
        let pool_size = (n / 3).clamp(3, 5_000) as usize;
        let pool: Vec<u32> = (0..pool_size).map(|_| self.attacker_ip(0.2, 0.3)).collect();
        let mode = rng::unit(&mut self.r);
        let fixed_ua = if mode < 0.35 {
            Some(self.agents.draw_automation(&mut self.r))
        } else if mode < 0.6 {
            Some(self.agents.draw_common(&mut self.r))
        } else {
            None
        };
        let mean = rng::range(&mut self.r, 2_000, 30_000) as f64;
        for t in self.schedule(t0, n, mean, 0) {
            let ip = pool[rng::index(&mut self.r, pool.len())];
            let ua = fixed_ua.unwrap_or_else(|| self.agents.draw_common(&mut self.r));
            let target = rng::chance(&mut self.r, 0.7).then(|| self.victim());
            let success = rng::chance(&mut self.r, 0.01);
            let device = self.bot_device();
            self.attack_row(
                t,
                target,
                ip,
                Client { ua, device },
                success,
                Label::Stuffing,
            );
        }
        n
    }

    fn spray(&mut self, t0: i64, n: u64) -> u64 {
        let n_ips = rng::range(&mut self.r, 1, 4) as usize;
        let ips: Vec<u32> = (0..n_ips).map(|_| self.attacker_ip(0.5, 1.0)).collect();
        let ua = if rng::chance(&mut self.r, 0.6) {
            self.agents.draw_common(&mut self.r)
        } else {
            self.agents.draw_automation(&mut self.r)
        };
        let mean = rng::range(&mut self.r, 10_000, 120_000) as f64;
        let times = self.schedule(t0, n, mean, 0);
        let two_passwords = rng::chance(&mut self.r, 0.4);
        let mut made = 0;
        while made < n {
            let target = rng::chance(&mut self.r, 0.9).then(|| self.victim());
            let tries = if two_passwords && made + 1 < n { 2 } else { 1 };
            for _ in 0..tries {
                let ip = ips[rng::index(&mut self.r, ips.len())];
                let success = rng::chance(&mut self.r, 0.003);
                let device = self.bot_device();
                self.attack_row(
                    times[made as usize],
                    target,
                    ip,
                    Client { ua, device },
                    success,
                    Label::Spray,
                );
                made += 1;
            }
        }
        made
    }

    fn bruteforce(&mut self, t0: i64, n: u64) -> u64 {
        let v = self.victim();
        let ip = self.attacker_ip(0.5, 1.0);
        let ua = if rng::chance(&mut self.r, 0.6) {
            self.agents.draw_automation(&mut self.r)
        } else {
            self.agents.draw_common(&mut self.r)
        };
        let cracked = rng::chance(&mut self.r, 0.03);
        let device = self.bot_device();
        let mean = rng::range(&mut self.r, 1_000, 8_000) as f64;
        let times = self.schedule(t0, n, mean, 200);
        for (i, &t) in (0u64..).zip(&times) {
            let success = cracked && i + 1 == n;
            self.attack_row(
                t,
                Some(v),
                ip,
                Client { ua, device },
                success,
                Label::Bruteforce,
            );
        }
        n
    }
}

fn min_size(label: Label) -> u64 {
    match label {
        Label::Naive | Label::Vpn | Label::Targeted => 1,
        Label::Stuffing => 30,
        Label::Spray => 20,
        Label::Bruteforce => 10,
    }
}
