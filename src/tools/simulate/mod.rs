//! `riskgate simulate`: synthetic login histories in the column layout of
//! the public RBA login dataset (Wiefling et al., ACM TOPS 2022), plus an
//! `Attacker` column naming the attacker model behind each attack row.
//!
//! Deterministic from the seed (ChaCha8), streamed in time order with
//! memory bounded by the users and one day of rows, never by the output.
//! See [`run`] for the model; [`Sources`] for where its tables come from.

mod agents;
mod generator;
mod output;
mod rng;
mod world;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use agents::{Agent, Agents, Kind};
pub use output::{HEADER, format_timestamp, parse_date};
pub use world::{BadList, Geo, NetKind, World, parse_cidr};

/// Environment variable naming the data directory.
pub const DATA_ENV: &str = "RISKGATE_SIM_DATA";

/// The attacker models, in the order of the `Attacker` column's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Label {
    /// One victim, a random address anywhere, a common browser string.
    Naive,
    /// One victim, a hosting/VPN address in the victim's country.
    Vpn,
    /// One victim, an address in the victim's city and the victim's browser
    /// and OS family: Wiefling et al.'s strongest attacker.
    Targeted,
    /// Leaked credentials against many accounts from rotating proxies.
    Stuffing,
    /// A few passwords against many accounts from one or a few addresses.
    Spray,
    /// Many passwords against one account from one address.
    Bruteforce,
}

impl Label {
    /// Every label, in column-value order.
    pub const ALL: [Label; 6] = [
        Label::Naive,
        Label::Vpn,
        Label::Targeted,
        Label::Stuffing,
        Label::Spray,
        Label::Bruteforce,
    ];

    /// The value written in the `Attacker` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Naive => "naive",
            Label::Vpn => "vpn",
            Label::Targeted => "targeted",
            Label::Stuffing => "stuffing",
            Label::Spray => "spray",
            Label::Bruteforce => "bruteforce",
        }
    }

    /// The label named `s`.
    pub fn parse(s: &str) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.as_str() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The default share of each attacker model among attack rows.
pub const DEFAULT_MIX: [f64; 6] = [0.15, 0.10, 0.10, 0.40, 0.15, 0.10];

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A setting is out of range.
    #[error("invalid `{field}`: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The built-in world table is malformed (line 0: the table as a whole).
    #[error("world table line {line}: {message}")]
    Table {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A data file exists but cannot be read.
    #[error("cannot read `{}`: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A data file is not the JSON expected.
    #[error("invalid JSON in `{}`: {source}", .path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// uap-core's rules could not be loaded.
    #[error(transparent)]
    Ua(crate::signals::device::UaError),
    /// Writing the CSV failed.
    #[error("cannot write the CSV: {0}")]
    Write(#[from] csv::Error),
    /// Writing failed.
    #[error("cannot write the CSV: {0}")]
    Io(#[from] std::io::Error),
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed: the same seed, settings and sources give the same bytes.
    pub seed: u64,
    /// Legitimate users (each logs in at least once).
    pub users: u32,
    /// Days covered.
    pub days: u32,
    /// First day, in days since 1970-01-01 (UTC).
    pub start_day: i64,
    /// Share of all rows that are attack rows, in [0, 1).
    pub attack_rate: f64,
    /// Relative weight of each [`Label`] among attack rows.
    pub mix: [f64; 6],
    /// Share of legitimate users whose devices hold a key the login service
    /// verifies at login (a passkey, an attested app): their rows say
    /// `key_verified`. Attackers never can.
    pub bound_share: f64,
}

/// Default share of users with device-bound keys. An assumption, not a
/// measurement: passkeys and attested apps are spreading but far from
/// universal, so about a third of the users of a service that offers them.
pub const DEFAULT_BOUND_SHARE: f64 = 0.3;

impl SimConfig {
    /// Most users.
    pub const MAX_USERS: u32 = 10_000_000;
    /// Most days.
    pub const MAX_DAYS: u32 = 3660;

    /// Defaults for `users` over `days`.
    pub fn new(seed: u64, users: u32, days: u32) -> SimConfig {
        SimConfig {
            seed,
            users,
            days,
            // 2026-03-02: the browser corpora date from 2026.
            start_day: 20_514,
            attack_rate: 0.02,
            mix: DEFAULT_MIX,
            bound_share: DEFAULT_BOUND_SHARE,
        }
    }

    /// Checks every setting, reporting the first problem.
    ///
    /// # Errors
    ///
    /// [`SimError::Config`] naming the setting.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |field, reason: String| Err(SimError::Config { field, reason });
        if self.users == 0 || self.users > Self::MAX_USERS {
            return bad("users", format!("must be 1..={}", Self::MAX_USERS));
        }
        if self.days == 0 || self.days > Self::MAX_DAYS {
            return bad("days", format!("must be 1..={}", Self::MAX_DAYS));
        }
        if !(0.0..0.9).contains(&self.attack_rate) {
            return bad("attack-rate", "must be in [0, 0.9)".into());
        }
        if self.mix.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return bad(
                "attack-mix",
                "weights must be finite and non-negative".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.bound_share) {
            return bad("bound-share", "must be in [0, 1]".into());
        }
        if self.attack_rate > 0.0 && self.mix.iter().sum::<f64>() <= 0.0 {
            return bad("attack-mix", "needs a positive weight".into());
        }
        Ok(())
    }
}

/// Parses `naive=0.2,stuffing=0.5,…` (labels not named get weight 0).
///
/// # Errors
///
/// [`SimError::Config`] for an unknown label or a bad number.
pub fn parse_mix(s: &str) -> Result<[f64; 6], SimError> {
    let mut mix = [0.0; 6];
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, w) = item.split_once('=').ok_or_else(|| SimError::Config {
            field: "attack-mix",
            reason: format!("`{item}` is not `label=weight`"),
        })?;
        let label = Label::parse(name.trim()).ok_or_else(|| SimError::Config {
            field: "attack-mix",
            reason: format!(
                "unknown attacker `{name}` (known: naive, vpn, targeted, stuffing, spray, bruteforce)"
            ),
        })?;
        mix[label.index()] = w.trim().parse::<f64>().map_err(|_| SimError::Config {
            field: "attack-mix",
            reason: format!("`{w}` is not a number"),
        })?;
    }
    Ok(mix)
}

/// The tables a simulation draws from.
pub struct Sources {
    world: World,
    agents: Agents,
    /// One line per source used, for the summary.
    pub used: Vec<String>,
}

impl Sources {
    /// Built-in tables only: the hand-written world, a stand-in bad list,
    /// hand-written browser strings and the woothee parser.
    ///
    /// # Errors
    ///
    /// [`SimError::Table`] if the built-in table is malformed (a bug).
    pub fn builtin() -> Result<Sources, SimError> {
        let (agents, mut used) = Agents::load(None)?;
        used.insert(0, "built-in world table, stand-in bad list".into());
        Ok(Sources {
            world: World::builtin()?,
            agents,
            used,
        })
    }

    /// The built-in world plus whatever `dir` has: MaxMind test sources,
    /// FireHOL level 1 and Tor exits, the browser corpora and uap-core's
    /// rules. Missing files fall back to the built-in equivalents.
    ///
    /// # Errors
    ///
    /// [`SimError`] if a file is present but unreadable or malformed.
    pub fn load(dir: &Path) -> Result<Sources, SimError> {
        let mut world = World::builtin()?;
        let mut used = vec!["built-in world table".to_string()];
        let loaded = world.load_data(dir)?;
        if !loaded.iter().any(|l| l.contains("ip-lists")) {
            used.push("stand-in bad list (no ip-lists)".into());
        }
        used.extend(loaded);
        let (agents, ua_used) = Agents::load(Some(dir))?;
        used.extend(ua_used);
        Ok(Sources {
            world,
            agents,
            used,
        })
    }

    /// The data directory to use: `explicit`, else `$RISKGATE_SIM_DATA`,
    /// else `../shared/data` from the working directory, else the same
    /// beside the source tree this binary was built from; None when none
    /// exists.
    pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
        if let Some(p) = explicit {
            return Some(p.to_path_buf());
        }
        if let Some(p) = std::env::var_os(DATA_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        [
            PathBuf::from("../shared/data"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
        ]
        .into_iter()
        .find(|p| p.is_dir())
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.world
    }
}

/// Counts from one run, printed by the CLI.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Rows written.
    pub rows: u64,
    /// Legitimate rows.
    pub legit_rows: u64,
    /// Failed legitimate rows (typos, forgotten passwords).
    pub legit_failures: u64,
    /// Legitimate users.
    pub users: u64,
    /// Attack rows against user IDs that have no account.
    pub unknown_user_rows: u64,
    /// Attack rows per [`Label`].
    pub attack_rows: [u64; 6],
    /// Campaigns per [`Label`].
    pub campaigns: [u64; 6],
    /// Account takeovers (successful attack rows).
    pub takeovers: u64,
    /// Rows with `Is Attack IP` = True: attack rows, legitimate rows.
    pub attack_ip_rows: (u64, u64),
    /// Users by legitimate rows: 1–4, 5–12, 13–39, 40+.
    pub history: [u64; 4],
    /// Rows with an empty RTT.
    pub empty_rtt: u64,
    /// Rows with `-` for region or city.
    pub unknown_location: u64,
    /// Rows with a 10.x placeholder address.
    pub placeholder_ip: u64,
    /// Rows with a placeholder ASN (≥ 500000).
    pub placeholder_asn: u64,
    /// Rows whose user agent did not parse (empty device type).
    pub unparsable_ua: u64,
    /// Distinct user-agent strings seen.
    pub distinct_uas: usize,
    /// First and last timestamp, ms since the epoch.
    pub span_ms: (i64, i64),
    /// Sources used.
    pub sources: Vec<String>,
}

impl Summary {
    /// Attack rows of all kinds.
    pub fn attack_total(&self) -> u64 {
        self.attack_rows.iter().sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: u64| 100.0 * n as f64 / self.rows.max(1) as f64;
        writeln!(
            f,
            "rows {} ({} .. {})",
            self.rows,
            format_timestamp(self.span_ms.0),
            format_timestamp(self.span_ms.1)
        )?;
        writeln!(
            f,
            "legitimate: {} rows ({} failed), {} users",
            self.legit_rows, self.legit_failures, self.users
        )?;
        writeln!(
            f,
            "history (legitimate rows per user): 1-4: {}  5-12: {}  13-39: {}  40+: {}",
            self.history[0], self.history[1], self.history[2], self.history[3]
        )?;
        writeln!(
            f,
            "attack rows: {} ({:.2}%), account takeovers: {}, rows on unknown user IDs: {}",
            self.attack_total(),
            pct(self.attack_total()),
            self.takeovers,
            self.unknown_user_rows
        )?;
        for l in Label::ALL {
            writeln!(
                f,
                "  {:<10} {:>9} rows in {:>6} campaigns",
                l.as_str(),
                self.attack_rows[l.index()],
                self.campaigns[l.index()]
            )?;
        }
        writeln!(
            f,
            "Is Attack IP: {} attack rows, {} legitimate rows",
            self.attack_ip_rows.0, self.attack_ip_rows.1
        )?;
        writeln!(
            f,
            "quirks: empty RTT {}, unknown region/city {}, 10.x address {}, ASN >= 500000 {}, unparsable UA {}",
            self.empty_rtt,
            self.unknown_location,
            self.placeholder_ip,
            self.placeholder_asn,
            self.unparsable_ua
        )?;
        writeln!(f, "distinct user agents: {}", self.distinct_uas)?;
        writeln!(f, "sources:")?;
        for s in &self.sources {
            writeln!(f, "  {s}")?;
        }
        Ok(())
    }
}

/// Generates the logins of `cfg` from `sources` into `out` as CSV.
///
/// The model, in brief. Each legitimate user has a home country, city and
/// ISP (one to three /24s with a dynamic address), most have a mobile
/// carrier (CGNAT pools shared by many users) and some a work network;
/// one to three devices with a stable browser string that now and then
/// upgrades; a log-normal daily login rate (most users log in a handful of
/// times, a few dozens), a preferred hour in their own time zone, typos
/// (a failure followed by a success), occasional trips (domestic or
/// abroad: hotel Wi-Fi, roaming, a local SIM), and a few use a VPN or Tor.
/// Attack campaigns are budgeted so attack rows are `attack_rate` of the
/// output, split by `mix`; see [`Label`] for each model. Successful attack
/// rows are account takeovers. `Is Attack IP` is True exactly when the
/// address is on the known-bad list (FireHOL level 1 or a Tor exit).
///
/// # Errors
///
/// [`SimError::Config`] for bad settings; [`SimError::Write`] or
/// [`SimError::Io`] when `out` fails.
pub fn run<W: Write>(cfg: &SimConfig, sources: &mut Sources, out: W) -> Result<Summary, SimError> {
    cfg.validate()?;
    let mut summary = generator::generate(cfg, &sources.world, &mut sources.agents, out)?;
    summary.sources = sources.used.clone();
    Ok(summary)
}
