//! `riskgate bench`: drive a running server with a realistic mix of Evaluate
//! attempts and, in the same invocation and with the same load shape, with
//! the standard `grpc.health.v1.Health/Check` RPC — a real unary RPC that
//! does no work, the floor — and print both side by side with their ratios.
//!
//! Order: warm-up (Evaluate load, not recorded) → floor → Evaluate → floor
//! again. The floor row is the **better** (higher-throughput) of its two runs:
//! on a noisy machine that choice can only flatter the floor, so the
//! Evaluate/floor ratios are conservative. Both floor runs are printed too.
//!
//! Closed loop by default (N workers, each waits for its answer before the
//! next call); `--rate R` makes it open loop: ticks at R calls/s spread over
//! the workers, a worker more than one tick behind skips the ticks it missed
//! and counts them as late (they are not queued), and latency is measured
//! from the moment a call is sent.
//!
//! Bounded: concurrency, duration, rate, users and calls per phase are
//! capped ([`limits`]), the run stops by itself, and it talks only to
//! `--addr`.
//!
//! The generator shares the machine with the server it measures, so it
//! keeps its own cost per call low: of each Evaluate answer it decodes only
//! the decision id and action (`Answer`; protobuf skips the other fields
//! without allocating them), which is all it needs for its tally and its
//! reports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::api::client::{self, Attempt, Connection};
use crate::cli::eval::UsageError;
use crate::domain::{Action, Channel, CredentialResult, DeviceBinding, Outcome};

/// Caps on what one `bench` invocation may do.
pub mod limits {
    /// Most concurrent workers.
    pub const MAX_CONCURRENCY: usize = 1024;
    /// Most keys the Redis memory reading scans.
    pub const MAX_MEMORY_KEYS: u64 = 2_000_000;
    /// Longest measured phase, seconds.
    pub const MAX_DURATION_S: f64 = 300.0;
    /// Longest warm-up, seconds.
    pub const MAX_WARMUP_S: f64 = 30.0;
    /// Highest open-loop target rate, calls/s.
    pub const MAX_RATE: f64 = 1_000_000.0;
    /// Most simulated users.
    pub const MAX_USERS: u32 = 1_000_000;
    /// Most calls in one phase, whatever the duration.
    pub const MAX_CALLS_PER_PHASE: u64 = 50_000_000;
    /// Workers sharing one HTTP/2 connection.
    pub const WORKERS_PER_CONNECTION: usize = 8;
    /// Most `--compare` servers.
    pub const MAX_COMPARE: usize = 4;
    /// Deadline of one call.
    pub const CALL_TIMEOUT_S: u64 = 10;
}

/// The workload mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mix {
    /// ≈85 % repeat logins from the user's own device and network (≈5 % of
    /// those with a mistyped password), ≈11 % new devices and/or networks,
    /// ≈4 % attacks: one IP spraying many users with invalid credentials and
    /// a set of credential-stuffing IPs.
    Realistic,
}

/// `riskgate bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Server address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// Concurrent workers (closed loop: calls in flight).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds of each measured phase (floor, Evaluate, floor).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Open-loop target rate in calls/s over all workers [default: closed loop].
    #[arg(long)]
    pub rate: Option<f64>,
    /// The workload.
    #[arg(long, value_enum, default_value = "realistic")]
    pub mix: Mix,
    /// Simulated users, each with a home IP, a device id and a user agent.
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
    /// Seed of the workload (same seed, same population and attempt sequence per worker).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds of unrecorded Evaluate load before the measured phases.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Share of legitimate ALLOW decisions reported as LOGIN_SUCCEEDED.
    #[arg(long, default_value_t = 0.2)]
    pub report_fraction: f64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Another server to run the same Evaluate load against in this
    /// invocation, as LABEL=URL (for example `redis=http://127.0.0.1:50052`
    /// for the same build on the Redis store); repeatable, at most 4. Its
    /// row is printed next to `--addr`'s with the difference.
    #[arg(long, value_name = "LABEL=URL")]
    pub compare: Vec<String>,
    /// The metrics listener of `--addr`'s server (HOST:PORT): its
    /// `process_cpu_seconds_total` is read before and after each phase, and
    /// the server's CPU per call printed next to the generator's.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// The metrics listener of a `--compare` server, as LABEL=HOST:PORT.
    #[arg(long, value_name = "LABEL=HOST:PORT")]
    pub compare_metrics: Vec<String>,
    /// The Redis that `--addr`'s server uses: its `INFO cpu` and
    /// `INFO commandstats` are read before and after each phase, and
    /// Redis's CPU and commands per call printed.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// The Redis of a `--compare` server, as LABEL=URL.
    #[arg(long, value_name = "LABEL=URL")]
    pub compare_redis: Vec<String>,
    #[command(flatten)]
    pub tls: crate::api::client::ClientTls,
}

/// A server's `process_cpu_seconds_total` and, of it, its journal writer's
/// (`riskgate_journal_writer_cpu_seconds_total`, 0 when absent), read from
/// its metrics listener.
async fn server_cpu(addr: &str) -> Option<(f64, f64)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let read = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: riskgate\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        Some((
            value("process_cpu_seconds_total")?,
            value("riskgate_journal_writer_cpu_seconds_total").unwrap_or(0.0),
        ))
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()
        .flatten()
}

/// A Redis's CPU seconds (user + system) and commands served so far (the
/// `INFO` calls that read them excluded).
async fn redis_usage(url: &str) -> Option<(f64, u64)> {
    let read = async {
        let client = redis::Client::open(url).ok()?;
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        let cpu: String = redis::cmd("INFO")
            .arg("cpu")
            .query_async(&mut c)
            .await
            .ok()?;
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut c)
            .await
            .ok()?;
        let field = |name: &str| {
            cpu.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let seconds = field("used_cpu_user")? + field("used_cpu_sys")?;
        let calls = stats
            .lines()
            .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
            .filter_map(|l| {
                l.split_once(':')?
                    .1
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("calls="))?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        Some((seconds, calls))
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()
        .flatten()
}

/// Redis memory by key family after a run (`MEMORY USAGE … SAMPLES 0`,
/// summed): what a learned user costs the shared store.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RedisMemory {
    /// Users with a profile (`{u:…}:prof`): taught at least once.
    pub learned_users: u64,
    /// Keys read, and whether the scan stopped at [`limits::MAX_MEMORY_KEYS`].
    pub keys: u64,
    pub truncated: bool,
    /// Bytes per key family: `prof`, `p` (pending), `d` (recent), `v`
    /// (failures) of users; `ip`, `net`, `device`, `global`; `other`.
    pub bytes: std::collections::BTreeMap<String, u64>,
}

impl RedisMemory {
    /// Every byte divided by the learned users (0 without any).
    pub fn per_learned_user(&self) -> f64 {
        let total: u64 = self.bytes.values().sum();
        ratio(total as f64, self.learned_users as f64)
    }

    fn family(key: &str) -> &'static str {
        let tag = key.split_once('{').and_then(|(_, t)| t.split_once('}'));
        match tag {
            Some((t, rest)) if t.starts_with("u:") => match rest {
                ":prof" => "user profile",
                ":p" => "user pending",
                ":d" => "user recent",
                ":w" | ":v" => "user failures",
                _ => "user other",
            },
            Some((t, _)) if t.starts_with("i:") => "ip",
            Some((t, _)) if t.starts_with("n:") => "network",
            Some((t, _)) if t.starts_with("dv:") => "device",
            Some(("g", _)) => "deployment-wide",
            _ => "other",
        }
    }
}

/// Reads what every key of the Redis at `url` uses (for a bench's own
/// Redis: other data is counted as `other`).
async fn redis_memory(url: &str) -> Option<RedisMemory> {
    let read = async {
        let client = redis::Client::open(url).ok()?;
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        let mut m = RedisMemory::default();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await
                .ok()?;
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
            }
            let sizes: Vec<Option<u64>> = pipe.query_async(&mut c).await.ok()?;
            for (k, size) in keys.iter().zip(sizes) {
                let family = RedisMemory::family(k);
                if family == "user profile" {
                    m.learned_users += 1;
                }
                *m.bytes.entry(family.to_string()).or_default() += size.unwrap_or(0);
                m.keys += 1;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
            if m.keys >= limits::MAX_MEMORY_KEYS {
                m.truncated = true;
                break;
            }
        }
        Some(m)
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .ok()
        .flatten()
}

/// This process's CPU seconds (the load generator's own cost).
fn own_cpu() -> Option<f64> {
    crate::telemetry::process::sample().map(|s| s.0)
}

/// The value after `prefix` (`LABEL=`) in a list of LABEL=VALUE options.
fn find_labelled<'a>(list: &'a [String], prefix: &str) -> Option<&'a str> {
    list.iter().find_map(|m| m.strip_prefix(prefix))
}

/// Where a phase's costs are read: the server's metrics listener and its
/// Redis, when known.
#[derive(Clone, Copy, Default)]
struct Probe<'a> {
    metrics: Option<&'a str>,
    redis: Option<&'a str>,
}

/// CPU seconds before a phase: the server's (when known), ours, and the
/// Redis's with its command count.
struct CpuMark(Option<(f64, f64)>, Option<f64>, Option<(f64, u64)>);

impl CpuMark {
    async fn now(probe: Probe<'_>) -> CpuMark {
        let server = match probe.metrics {
            Some(a) => server_cpu(a).await,
            None => None,
        };
        let redis = match probe.redis {
            Some(u) => redis_usage(u).await,
            None => None,
        };
        CpuMark(server, own_cpu(), redis)
    }

    /// Per-call µs of CPU since this mark, for `calls` calls (their
    /// reports included), into `row`.
    async fn charge(self, probe: Probe<'_>, row: &mut Row) {
        let after = CpuMark::now(probe).await;
        let calls = row.calls.max(1) as f64;
        let per = |a: Option<f64>, b: Option<f64>| Some((b? - a?) * 1e6 / calls);
        row.server_cpu_us = per(self.0.map(|c| c.0), after.0.map(|c| c.0));
        row.journal_cpu_us = per(self.0.map(|c| c.1), after.0.map(|c| c.1));
        row.generator_cpu_us = per(self.1, after.1);
        row.redis_cpu_us = per(self.2.map(|r| r.0), after.2.map(|r| r.0));
        row.redis_commands = match (self.2, after.2) {
            (Some(a), Some(b)) => Some(b.1.saturating_sub(a.1) as f64 / calls),
            _ => None,
        };
    }
}

/// Runs `bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let plan = Plan::from_args(&args)?;
    let channels = connect(&args.addr, &args.tls, plan.concurrency).await?;
    check_serving(&args.addr, &channels[0]).await?;
    let mut others = Vec::new();
    for (label, addr) in &plan.compare {
        let ch = connect(addr, &args.tls, plan.concurrency).await?;
        check_serving(addr, &ch[0]).await?;
        others.push((label.clone(), addr.clone(), ch));
    }
    let population = Arc::new(population(plan.users, plan.seed));

    if plan.warmup > Duration::ZERO {
        for ch in std::iter::once(&channels).chain(others.iter().map(|o| &o.2)) {
            run_phase(Target::Evaluate, ch, &plan, &population, 0, plan.warmup).await?;
        }
    }
    let probe = Probe {
        metrics: args.metrics_addr.as_deref(),
        redis: args.redis_url.as_deref(),
    };
    let phase = |target, channels, phase, probe| {
        measured(probe, target, channels, &plan, &population, phase)
    };
    let floor1 = phase(Target::Floor, &channels, 1, probe).await?;
    let evaluate = phase(Target::Evaluate, &channels, 2, probe).await?;
    let mut compared = Vec::new();
    for (label, addr, ch) in &others {
        let prefix = format!("{label}=");
        let their = Probe {
            metrics: find_labelled(&args.compare_metrics, &prefix),
            redis: find_labelled(&args.compare_redis, &prefix),
        };
        // The same seed as `--addr`'s Evaluate phase: the same attempts.
        let row = phase(Target::Evaluate, ch, 2, their).await?;
        compared.push(Compared::new(label, addr, row, &evaluate));
    }
    let floor2 = phase(Target::Floor, &channels, 3, probe).await?;

    let mut result = BenchResult::new(&args, floor1, evaluate, floor2);
    result.compare = compared;
    if let Some(url) = args.redis_url.as_deref() {
        result.redis_memory = redis_memory(url).await;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", result.render());
    }
    Ok(())
}

/// The validated arguments.
#[derive(Debug, Clone)]
struct Plan {
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
    rate: Option<f64>,
    users: u32,
    seed: u64,
    report_fraction: f64,
    /// (label, address) of the other servers.
    compare: Vec<(String, String)>,
}

impl Plan {
    fn from_args(a: &BenchArgs) -> Result<Plan, UsageError> {
        let mut problems = Vec::new();
        if a.concurrency == 0 || a.concurrency > limits::MAX_CONCURRENCY {
            problems.push(format!(
                "`--concurrency` must be 1 to {}",
                limits::MAX_CONCURRENCY
            ));
        }
        if !(a.duration > 0.0 && a.duration <= limits::MAX_DURATION_S) {
            problems.push(format!(
                "`--duration` must be more than 0 and at most {} seconds",
                limits::MAX_DURATION_S
            ));
        }
        if !(a.warmup >= 0.0 && a.warmup <= limits::MAX_WARMUP_S) {
            problems.push(format!(
                "`--warmup` must be 0 to {} seconds",
                limits::MAX_WARMUP_S
            ));
        }
        if let Some(r) = a.rate
            && !(r > 0.0 && r <= limits::MAX_RATE)
        {
            problems.push(format!(
                "`--rate` must be more than 0 and at most {}",
                limits::MAX_RATE
            ));
        }
        if a.users == 0 || a.users > limits::MAX_USERS {
            problems.push(format!("`--users` must be 1 to {}", limits::MAX_USERS));
        }
        if !(0.0..=1.0).contains(&a.report_fraction) {
            problems.push("`--report-fraction` must be in [0, 1]".to_string());
        }
        let mut compare = Vec::new();
        if a.compare.len() > limits::MAX_COMPARE {
            problems.push(format!(
                "`--compare` may be given at most {} times",
                limits::MAX_COMPARE
            ));
        }
        for c in &a.compare {
            match c.split_once('=') {
                Some((label, url)) if !label.is_empty() && label.len() <= 32 && !url.is_empty() => {
                    compare.push((label.to_string(), url.to_string()));
                }
                _ => problems.push(format!("`--compare` wants LABEL=URL, not `{c}`")),
            }
        }
        if !problems.is_empty() {
            return Err(UsageError(problems.join("; ")));
        }
        Ok(Plan {
            concurrency: a.concurrency,
            duration: Duration::from_secs_f64(a.duration),
            warmup: Duration::from_secs_f64(a.warmup),
            rate: a.rate,
            users: a.users,
            seed: a.seed,
            report_fraction: a.report_fraction,
            compare,
        })
    }
}

/// One HTTP/2 connection per [`limits::WORKERS_PER_CONNECTION`] workers.
async fn connect(
    addr: &str,
    tls: &client::ClientTls,
    concurrency: usize,
) -> anyhow::Result<Vec<Connection>> {
    let n = concurrency.div_ceil(limits::WORKERS_PER_CONNECTION).max(1);
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        let c = client::connect(
            addr,
            tls,
            Duration::from_secs(3),
            Duration::from_secs(limits::CALL_TIMEOUT_S),
        )
        .await
        .context("is riskgate serving there?")?;
        connections.push(c);
    }
    Ok(connections)
}

async fn check_serving(addr: &str, connection: &Connection) -> anyhow::Result<()> {
    let status = connection.caller().health().await.map_err(|e| {
        anyhow::anyhow!(
            "{addr} does not answer the gRPC health check ({}: {})",
            e.code,
            e.message
        )
    })?;
    if status != "SERVING" {
        anyhow::bail!("{addr} is not SERVING");
    }
    Ok(())
}

/// A simulated user: where and how they usually log in.
#[derive(Debug, Clone)]
struct User {
    id: String,
    home_ip: String,
    device_id: String,
    user_agent: &'static str,
    channel: Channel,
}

const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36 Edg/121.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
];

const APPS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 BankApp/5.12.0",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 BankApp/5.12.0",
];

const PARTNER: &str = "PartnerGateway/3.1 (+https://partner.example/bot)";
const HEADLESS: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36";
const SCRIPTS: &[&str] = &["python-requests/2.31.0", "curl/8.4.0", "Go-http-client/2.0"];

/// The one IP that sprays many users with invalid credentials.
const SPRAY_IP: &str = "203.0.113.66";
/// Size of the credential-stuffing IP set.
const STUFFING_IPS: u32 = 64;

fn pick<'a>(rng: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs.get(rng.random_range(0..xs.len())).copied().unwrap_or("")
}

/// The population, a pure function of `(n, seed)`.
fn population(n: u32, seed: u64) -> Vec<User> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let r: f64 = rng.random();
            let channel = if r < 0.58 {
                Channel::Web
            } else if r < 0.93 {
                Channel::MobileApp
            } else if r < 0.96 {
                Channel::CallCenter
            } else if r < 0.98 {
                Channel::Kiosk
            } else {
                Channel::Api
            };
            let user_agent = match channel {
                Channel::MobileApp => pick(&mut rng, APPS),
                Channel::Api => PARTNER,
                Channel::CallCenter => "",
                _ => pick(&mut rng, BROWSERS),
            };
            let device_id = if channel == Channel::CallCenter {
                String::new()
            } else {
                format!("dev-{:016x}", rng.random::<u64>())
            };
            User {
                id: format!("bench-user-{i:07}"),
                home_ip: random_ip(&mut rng, 10),
                device_id,
                user_agent,
                channel,
            }
        })
        .collect()
}

fn random_ip(rng: &mut StdRng, first: u8) -> String {
    format!(
        "{first}.{}.{}.{}",
        rng.random_range(0..=255u8),
        rng.random_range(0..=255u8),
        rng.random_range(1..=254u8)
    )
}

/// What kind of attempt to make; the shares are the `realistic` mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Own device, home network, right password.
    Repeat,
    /// Own device, home network, wrong password.
    Typo,
    /// A new device on the home network.
    NewDevice,
    /// The own device on a new network (travel, mobile data).
    NewNetwork,
    /// A new device on a new network.
    NewDeviceAndNetwork,
    /// The spraying IP, any user, invalid credentials.
    Spray,
    /// One of the stuffing IPs, any user, mostly invalid credentials.
    Stuffing,
}

const KINDS: &[(Kind, f64)] = &[
    (Kind::Repeat, 0.80),
    (Kind::Typo, 0.05),
    (Kind::NewDevice, 0.05),
    (Kind::NewNetwork, 0.04),
    (Kind::NewDeviceAndNetwork, 0.02),
    (Kind::Spray, 0.02),
    (Kind::Stuffing, 0.02),
];

fn draw_kind(rng: &mut StdRng) -> Kind {
    let mut r: f64 = rng.random();
    for (k, share) in KINDS {
        if r < *share {
            return *k;
        }
        r -= share;
    }
    Kind::Repeat
}

/// One attempt of the mix, and whether a legitimate user made it.
fn attempt(rng: &mut StdRng, users: &[User]) -> (Attempt, bool) {
    let kind = draw_kind(rng);
    let user = &users[rng.random_range(0..users.len())];
    let legit = !matches!(kind, Kind::Spray | Kind::Stuffing);
    let mut ip = user.home_ip.clone();
    let mut device_id = user.device_id.clone();
    let mut user_agent = user.user_agent.to_string();
    let mut channel = user.channel;
    let mut credential = CredentialResult::Valid;
    match kind {
        Kind::Repeat => {}
        Kind::Typo => credential = CredentialResult::Invalid,
        Kind::NewDevice => {
            device_id = format!("dev-{:016x}", rng.random::<u64>());
            user_agent = pick(rng, BROWSERS).to_string();
        }
        Kind::NewNetwork => ip = random_ip(rng, 172),
        Kind::NewDeviceAndNetwork => {
            ip = random_ip(rng, 172);
            device_id = format!("dev-{:016x}", rng.random::<u64>());
            user_agent = pick(rng, BROWSERS).to_string();
        }
        Kind::Spray => {
            ip = SPRAY_IP.to_string();
            device_id = String::new();
            user_agent = pick(rng, SCRIPTS).to_string();
            channel = Channel::Web;
            credential = CredentialResult::Invalid;
        }
        Kind::Stuffing => {
            let n = rng.random_range(0..STUFFING_IPS);
            ip = format!("198.18.{}.{}", n / 250, 1 + n % 250);
            device_id = format!("dev-{:016x}", rng.random::<u64>());
            user_agent = HEADLESS.to_string();
            channel = Channel::Web;
            if rng.random_bool(0.9) {
                credential = CredentialResult::Invalid;
            }
        }
    }
    let request = Attempt {
        user_id: user.id.clone(),
        channel,
        ip,
        device_id: (!device_id.is_empty()).then_some(device_id),
        device_binding: DeviceBinding::None,
        user_agent: (!user_agent.is_empty()).then_some(user_agent),
        credential,
    };
    (request, legit)
}

/// What a phase calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Floor,
    Evaluate,
}

/// One worker's counts, merged into a [`Row`].
struct Tally {
    latency: Histogram<u64>,
    /// The ReportOutcome calls' latencies.
    report_latency: Histogram<u64>,
    calls: u64,
    errors: BTreeMap<String, u64>,
    actions: BTreeMap<&'static str, u64>,
    reports: u64,
    report_errors: u64,
    late_ticks: u64,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Tally {
            latency: new_histogram()?,
            report_latency: new_histogram()?,
            calls: 0,
            errors: BTreeMap::new(),
            actions: BTreeMap::new(),
            reports: 0,
            report_errors: 0,
            late_ticks: 0,
        })
    }

    fn merge(&mut self, o: Tally) {
        // Both histograms have the same bounds; `add` only fails on
        // out-of-range values, which saturating records never produce.
        let _ = self.latency.add(&o.latency);
        let _ = self.report_latency.add(&o.report_latency);
        self.calls += o.calls;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in o.actions {
            *self.actions.entry(k).or_default() += v;
        }
        self.reports += o.reports;
        self.report_errors += o.report_errors;
        self.late_ticks += o.late_ticks;
    }

    fn error(&mut self, code: &'static str) {
        *self.errors.entry(code.to_string()).or_default() += 1;
    }
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs … 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).context("cannot create a latency histogram")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The load shape shared by every worker of a phase.
struct Shape {
    target: Target,
    start: Instant,
    deadline: Instant,
    /// Open loop: time between one worker's ticks.
    interval: Option<Duration>,
    concurrency: usize,
    budget: AtomicU64,
    report_fraction: f64,
}

/// A measured phase, with the CPU per call of the server whose metrics
/// listener is `metrics` (when given) and of this process.
async fn measured(
    probe: Probe<'_>,
    target: Target,
    channels: &[Connection],
    plan: &Plan,
    population: &Arc<Vec<User>>,
    phase: u64,
) -> anyhow::Result<Row> {
    let mark = CpuMark::now(probe).await;
    let mut row = run_phase(target, channels, plan, population, phase, plan.duration).await?;
    mark.charge(probe, &mut row).await;
    Ok(row)
}

async fn run_phase(
    target: Target,
    channels: &[Connection],
    plan: &Plan,
    population: &Arc<Vec<User>>,
    phase: u64,
    duration: Duration,
) -> anyhow::Result<Row> {
    let start = Instant::now();
    let shape = Arc::new(Shape {
        target,
        start,
        deadline: start + duration,
        interval: plan
            .rate
            .map(|r| Duration::from_secs_f64(plan.concurrency as f64 / r)),
        concurrency: plan.concurrency,
        budget: AtomicU64::new(limits::MAX_CALLS_PER_PHASE),
        report_fraction: plan.report_fraction,
    });
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..plan.concurrency {
        let channel = channels[w / limits::WORKERS_PER_CONNECTION % channels.len()].clone();
        let seed = plan
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(phase << 32)
            .wrapping_add(w as u64);
        workers.spawn(worker(w, channel, shape.clone(), population.clone(), seed));
    }
    let mut total = Tally::new()?;
    while let Some(t) = workers.join_next().await {
        total.merge(t.context("a bench worker failed")??);
    }
    Ok(Row::new(target, &total, start.elapsed()))
}

async fn worker(
    w: usize,
    connection: Connection,
    shape: Arc<Shape>,
    users: Arc<Vec<User>>,
    seed: u64,
) -> anyhow::Result<Tally> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut calls = connection.caller();
    let mut t = Tally::new()?;
    let mut next = shape
        .interval
        .map(|i| shape.start + i.mul_f64(w as f64 / shape.concurrency as f64));
    loop {
        if let (Some(interval), Some(tick)) = (shape.interval, next.as_mut()) {
            let now = Instant::now();
            if now < *tick {
                tokio::time::sleep_until((*tick).into()).await;
            } else if now - *tick > interval {
                // Too far behind: skip (and count) the missed ticks.
                let behind = ((now - *tick).as_secs_f64() / interval.as_secs_f64()) as u32;
                t.late_ticks += u64::from(behind);
                *tick += interval * behind;
            }
            if *tick >= shape.deadline {
                break;
            }
            *tick += interval;
        }
        if Instant::now() >= shape.deadline
            || shape
                .budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                .is_err()
        {
            break;
        }
        match shape.target {
            Target::Floor => {
                let sent = Instant::now();
                let r = calls.health().await;
                t.latency.saturating_record(micros(sent.elapsed()));
                t.calls += 1;
                if let Err(e) = r {
                    t.error(e.code);
                }
            }
            Target::Evaluate => {
                let (request, legit) = attempt(&mut rng, &users);
                let sent = Instant::now();
                let r = calls.evaluate_brief(request).await;
                t.latency.saturating_record(micros(sent.elapsed()));
                t.calls += 1;
                match r {
                    Ok((decision_id, action)) => {
                        *t.actions.entry(action_name(action)).or_default() += 1;
                        if action == Some(Action::Allow)
                            && legit
                            && rng.random_bool(shape.report_fraction)
                        {
                            t.reports += 1;
                            let sent = Instant::now();
                            let report = calls
                                .report(decision_id, Outcome::LoginSucceeded, None)
                                .await;
                            t.report_latency.saturating_record(micros(sent.elapsed()));
                            if report.is_err() {
                                t.report_errors += 1;
                            }
                        }
                    }
                    Err(e) => t.error(e.code),
                }
            }
        }
    }
    Ok(t)
}

fn action_name(a: Option<Action>) -> &'static str {
    match a {
        Some(Action::Allow) => "ALLOW",
        Some(Action::StepUp) => "STEP_UP",
        Some(Action::Deny) => "DENY",
        None => "UNSPECIFIED",
    }
}

/// One measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `floor` (Health/Check) or `evaluate`.
    pub name: &'static str,
    /// Calls of the phase's RPC (ReportOutcome calls not included).
    pub calls: u64,
    /// Wall time of the phase, until the last worker finished.
    pub seconds: f64,
    /// `calls / seconds`.
    pub throughput: f64,
    /// All RPCs per second, ReportOutcome included.
    pub rpc_throughput: f64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// Failed calls by gRPC code.
    pub errors: BTreeMap<String, u64>,
    /// Evaluate answers by action.
    pub actions: BTreeMap<&'static str, u64>,
    /// ReportOutcome(LOGIN_SUCCEEDED) calls made, how many failed, and
    /// their latency's median and 99th percentile, µs.
    pub reports: u64,
    pub report_errors: u64,
    pub report_p50_us: u64,
    pub report_p99_us: u64,
    /// Open loop: ticks skipped because a worker was more than one tick behind.
    pub late_ticks: u64,
    /// The server's CPU per call of this phase, µs (with `--metrics-addr`;
    /// an Evaluate's share includes the generator's reports).
    pub server_cpu_us: Option<f64>,
    /// Of `server_cpu_us`, the journal writer thread's: CPU the server
    /// spends off the decision path (a spare core runs it in parallel).
    pub journal_cpu_us: Option<f64>,
    /// The server's Redis: CPU per call, µs, and commands per call (with
    /// `--redis-url`).
    pub redis_cpu_us: Option<f64>,
    pub redis_commands: Option<f64>,
    /// The load generator's own CPU per call, µs.
    pub generator_cpu_us: Option<f64>,
}

impl Row {
    fn new(target: Target, t: &Tally, took: Duration) -> Row {
        let seconds = took.as_secs_f64().max(1e-9);
        let h = &t.latency;
        let empty = h.is_empty();
        let q = |q: f64| if empty { 0 } else { h.value_at_quantile(q) };
        let r = &t.report_latency;
        let rq = |q: f64| {
            if r.is_empty() {
                0
            } else {
                r.value_at_quantile(q)
            }
        };
        Row {
            name: match target {
                Target::Floor => "floor",
                Target::Evaluate => "evaluate",
            },
            calls: t.calls,
            seconds,
            throughput: t.calls as f64 / seconds,
            rpc_throughput: (t.calls + t.reports) as f64 / seconds,
            mean_us: if empty { 0.0 } else { h.mean() },
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if empty { 0 } else { h.max() },
            errors: t.errors.clone(),
            actions: t.actions.clone(),
            reports: t.reports,
            report_errors: t.report_errors,
            report_p50_us: rq(0.50),
            report_p99_us: rq(0.99),
            late_ticks: t.late_ticks,
            server_cpu_us: None,
            journal_cpu_us: None,
            redis_cpu_us: None,
            redis_commands: None,
            generator_cpu_us: None,
        }
    }
}

/// Evaluate relative to the floor.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    /// Evaluate calls/s ÷ floor calls/s.
    pub throughput: f64,
    /// All RPCs/s of the Evaluate phase (reports included) ÷ floor calls/s.
    pub rpc_throughput: f64,
    /// Evaluate p50 ÷ floor p50.
    pub p50: f64,
    /// Evaluate p99 ÷ floor p99.
    pub p99: f64,
}

/// Another server's Evaluate row, next to `--addr`'s.
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    pub label: String,
    pub addr: String,
    pub evaluate: Row,
    /// This row's calls/s ÷ `--addr`'s Evaluate calls/s.
    pub throughput_ratio: f64,
    /// This row's p50 − `--addr`'s Evaluate p50, in µs.
    pub p50_delta_us: i64,
    /// This row's p99 − `--addr`'s Evaluate p99, in µs.
    pub p99_delta_us: i64,
}

impl Compared {
    fn new(label: &str, addr: &str, row: Row, base: &Row) -> Self {
        let delta = |a: u64, b: u64| {
            i64::try_from(a).unwrap_or(i64::MAX) - i64::try_from(b).unwrap_or(i64::MAX)
        };
        Compared {
            label: label.to_string(),
            addr: addr.to_string(),
            throughput_ratio: ratio(row.throughput, base.throughput),
            p50_delta_us: delta(row.p50_us, base.p50_us),
            p99_delta_us: delta(row.p99_us, base.p99_us),
            evaluate: row,
        }
    }
}

/// The result of one invocation.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub addr: String,
    pub mix: Mix,
    pub concurrency: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub rate: Option<f64>,
    pub users: u32,
    pub seed: u64,
    pub report_fraction: f64,
    pub connections: usize,
    /// How the floor row was chosen from `floor_runs`.
    pub floor_choice: &'static str,
    pub floor: Row,
    pub evaluate: Row,
    /// Both floor runs: before and after Evaluate.
    pub floor_runs: [Row; 2],
    pub ratios: Ratios,
    /// `--compare` servers, run between the two floor runs.
    pub compare: Vec<Compared>,
    /// With `--redis-url`: that Redis's memory by key family at the end.
    pub redis_memory: Option<RedisMemory>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl BenchResult {
    fn new(args: &BenchArgs, floor1: Row, evaluate: Row, floor2: Row) -> Self {
        let floor = if floor2.throughput > floor1.throughput {
            floor2.clone()
        } else {
            floor1.clone()
        };
        let ratios = Ratios {
            throughput: ratio(evaluate.throughput, floor.throughput),
            rpc_throughput: ratio(evaluate.rpc_throughput, floor.throughput),
            p50: ratio(evaluate.p50_us as f64, floor.p50_us as f64),
            p99: ratio(evaluate.p99_us as f64, floor.p99_us as f64),
        };
        BenchResult {
            addr: args.addr.clone(),
            mix: args.mix,
            concurrency: args.concurrency,
            duration_s: args.duration,
            warmup_s: args.warmup,
            rate: args.rate,
            users: args.users,
            seed: args.seed,
            report_fraction: args.report_fraction,
            connections: args
                .concurrency
                .div_ceil(limits::WORKERS_PER_CONNECTION)
                .max(1),
            floor_choice: "the higher-throughput of the two floor runs (before and after Evaluate)",
            floor,
            evaluate,
            floor_runs: [floor1, floor2],
            ratios,
            compare: Vec::new(),
            redis_memory: None,
        }
    }

    /// The result for a terminal.
    pub fn render(&self) -> String {
        let mut out = format!(
            "riskgate bench  {}  concurrency {} ({} connections)  {} s per phase  {}  users {}  seed {}\n",
            self.addr,
            self.concurrency,
            self.connections,
            self.duration_s,
            match self.rate {
                Some(r) => format!("open loop at {r} calls/s"),
                None => "closed loop".to_string(),
            },
            self.users,
            self.seed,
        );
        out.push_str(&format!(
            "{:<22} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}  errors\n",
            "", "calls", "calls/s", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"
        ));
        let line = |label: &str, r: &Row| {
            let errors = if r.errors.is_empty() {
                "0".to_string()
            } else {
                r.errors
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            format!(
                "{label:<22} {:>9} {:>10.0} {:>8} {:>8} {:>8} {:>8} {:>8}  {errors}\n",
                r.calls, r.throughput, r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us
            )
        };
        out.push_str(&line("floor (Health/Check)", &self.floor));
        out.push_str(&line("Evaluate", &self.evaluate));
        for c in &self.compare {
            out.push_str(&line(&format!("Evaluate [{}]", c.label), &c.evaluate));
        }
        out.push_str(&format!(
            "floor runs: {:.0} and {:.0} calls/s (p99 {} and {} µs); row above: the better\n",
            self.floor_runs[0].throughput,
            self.floor_runs[1].throughput,
            self.floor_runs[0].p99_us,
            self.floor_runs[1].p99_us,
        ));
        let total: u64 = self.evaluate.actions.values().sum();
        let share = |k: &str| {
            100.0 * self.evaluate.actions.get(k).copied().unwrap_or(0) as f64 / total.max(1) as f64
        };
        out.push_str(&format!(
            "Evaluate actions: ALLOW {:.1}%  STEP_UP {:.1}%  DENY {:.1}%;  reports {} ({} failed, p50 {} µs, p99 {} µs)\n",
            share("ALLOW"),
            share("STEP_UP"),
            share("DENY"),
            self.evaluate.reports,
            self.evaluate.report_errors,
            self.evaluate.report_p50_us,
            self.evaluate.report_p99_us,
        ));
        if self.rate.is_some() {
            out.push_str(&format!(
                "late ticks skipped: floor {}  Evaluate {}\n",
                self.floor.late_ticks, self.evaluate.late_ticks
            ));
        }
        out.push_str(&format!(
            "Evaluate / floor: throughput {:.2} (all RPCs incl. reports {:.2})  p50 {:.2}  p99 {:.2}\n",
            self.ratios.throughput, self.ratios.rpc_throughput, self.ratios.p50, self.ratios.p99
        ));
        for c in &self.compare {
            out.push_str(&format!(
                "Evaluate [{}] / Evaluate: throughput {:.2}  p50 {:+} µs  p99 {:+} µs;  reports {} ({} failed, p50 {} µs, p99 {} µs)\n",
                c.label,
                c.throughput_ratio,
                c.p50_delta_us,
                c.p99_delta_us,
                c.evaluate.reports,
                c.evaluate.report_errors,
                c.evaluate.report_p50_us,
                c.evaluate.report_p99_us,
            ));
        }
        let us = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}"));
        out.push_str(&format!(
            "CPU per call, µs (server | generator): floor {} | {}  Evaluate {} | {}",
            us(self.floor.server_cpu_us),
            us(self.floor.generator_cpu_us),
            us(self.evaluate.server_cpu_us),
            us(self.evaluate.generator_cpu_us),
        ));
        if let (Some(e), Some(f)) = (self.evaluate.server_cpu_us, self.floor.server_cpu_us) {
            out.push_str(&format!(
                "  (server Evaluate / floor {:.2})",
                e / f.max(1e-9)
            ));
        }
        let journal = |r: &Row| match r.journal_cpu_us {
            Some(j) if j > 0.0 => format!(
                "  (journal writer {j:.1}, decision path {})",
                us(r.server_cpu_us.map(|s| s - j))
            ),
            _ => String::new(),
        };
        out.push_str(&journal(&self.evaluate));
        out.push('\n');
        let redis = |label: &str, r: &Row| match (r.redis_cpu_us, r.redis_commands) {
            (Some(cpu), Some(cmds)) => format!(
                "Redis per Evaluate{label} (its reports included): CPU {cpu:.1} µs, {cmds:.1} commands\n"
            ),
            _ => String::new(),
        };
        out.push_str(&redis("", &self.evaluate));
        for c in &self.compare {
            out.push_str(&format!(
                "CPU per call, µs [{}]: Evaluate {} | {}{}\n",
                c.label,
                us(c.evaluate.server_cpu_us),
                us(c.evaluate.generator_cpu_us),
                journal(&c.evaluate)
            ));
            out.push_str(&redis(&format!(" [{}]", c.label), &c.evaluate));
        }
        if let Some(m) = &self.redis_memory {
            out.push_str(&format!(
                "redis memory: {} keys{}, {} learned users, {:.0} B per learned user (MEMORY USAGE summed):",
                m.keys,
                if m.truncated { " (scan stopped)" } else { "" },
                m.learned_users,
                m.per_learned_user()
            ));
            for (family, bytes) in &m.bytes {
                out.push_str(&format!(
                    " {family} {:.0}",
                    ratio(*bytes as f64, m.learned_users as f64)
                ));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_keys_are_grouped_by_what_they_hold() {
        let f = RedisMemory::family;
        assert_eq!(f("rg:{u:00ff}:prof"), "user profile");
        assert_eq!(f("rg:{u:00ff}:p"), "user pending");
        assert_eq!(f("rg:{u:00ff}:d"), "user recent");
        assert_eq!(f("rg:{u:00ff}:w"), "user failures");
        assert_eq!(f("rg:{i:0a}:users"), "ip");
        assert_eq!(f("rg:{n:0a}:w"), "network");
        assert_eq!(f("rg:{dv:0a}:w"), "device");
        assert_eq!(f("rg:{g}:s:3:0a"), "deployment-wide");
        assert_eq!(f("unrelated"), "other");
        let m = RedisMemory {
            learned_users: 4,
            bytes: [("user profile".to_string(), 2000), ("ip".to_string(), 400)].into(),
            ..RedisMemory::default()
        };
        assert_eq!(m.per_learned_user(), 600.0);
    }

    #[test]
    fn the_population_and_attempts_are_a_function_of_the_seed() {
        let a = population(100, 7);
        let b = population(100, 7);
        assert_eq!(
            a.iter().map(|u| &u.home_ip).collect::<Vec<_>>(),
            b.iter().map(|u| &u.home_ip).collect::<Vec<_>>()
        );
        let mut r1 = StdRng::seed_from_u64(3);
        let mut r2 = StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let (x, y) = (attempt(&mut r1, &a).0, attempt(&mut r2, &b).0);
            assert_eq!(format!("{x:?}"), format!("{y:?}"));
        }
    }

    #[test]
    fn the_realistic_mix_has_its_shares() {
        let users = population(1000, 1);
        let mut rng = StdRng::seed_from_u64(1);
        let n = 20_000;
        let (mut own, mut invalid, mut spray) = (0, 0, 0);
        for _ in 0..n {
            let (r, _) = attempt(&mut rng, &users);
            let u = users.iter().find(|u| u.id == r.user_id).unwrap();
            if r.device_id.as_deref().unwrap_or("") == u.device_id && r.ip == u.home_ip {
                own += 1;
            }
            if r.credential == CredentialResult::Invalid {
                invalid += 1;
            }
            if r.ip == SPRAY_IP {
                spray += 1;
            }
        }
        let share = |x: i32| f64::from(x) / f64::from(n);
        assert!((0.82..0.88).contains(&share(own)), "{}", share(own));
        assert!((0.07..0.11).contains(&share(invalid)), "{}", share(invalid));
        assert!((0.01..0.03).contains(&share(spray)), "{}", share(spray));
        let total: f64 = KINDS.iter().map(|(_, s)| s).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn arguments_are_bounded() {
        let args = BenchArgs {
            addr: "http://127.0.0.1:1".into(),
            concurrency: 0,
            duration: 1e9,
            rate: Some(-1.0),
            mix: Mix::Realistic,
            users: 0,
            seed: 1,
            warmup: 2.0,
            report_fraction: 2.0,
            json: false,
            compare: vec!["nolabel".into()],
            metrics_addr: None,
            compare_metrics: Vec::new(),
            redis_url: None,
            compare_redis: Vec::new(),
            tls: Default::default(),
        };
        let e = Plan::from_args(&args).unwrap_err().0;
        for flag in [
            "--concurrency",
            "--duration",
            "--rate",
            "--users",
            "--report-fraction",
            "--compare",
        ] {
            assert!(e.contains(flag), "{e}");
        }
    }
}
