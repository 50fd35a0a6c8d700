//! `riskgate simulate`: write synthetic logins as CSV (the RBA dataset's
//! columns plus `Attacker`) and print a summary to stderr.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;

use crate::cli::eval::UsageError;
use crate::tools::simulate::{self, SimConfig, Sources};

/// `riskgate simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Seed: the same seed, settings and data give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Legitimate users (each logs in at least once).
    #[arg(long, default_value_t = 1000)]
    pub users: u32,
    /// Days covered.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// First day, YYYY-MM-DD (UTC).
    #[arg(long, default_value = "2026-03-02")]
    pub start: String,
    /// Output file, or `-` for stdout.
    #[arg(long, default_value = "-")]
    pub out: String,
    /// Share of rows that are attack rows, in [0, 0.9).
    #[arg(long, default_value_t = 0.02)]
    pub attack_rate: f64,
    /// Attacker weights, e.g. `naive=0.15,vpn=0.1,targeted=0.1,stuffing=0.4,spray=0.15,bruteforce=0.1`
    /// (the default); labels left out get weight 0.
    #[arg(long)]
    pub attack_mix: Option<String>,
    /// Share of legitimate users whose devices hold a key the login service
    /// verifies (passkey, attested app): their rows' `Device Binding` says
    /// `key_verified`; attackers, even those who copy a device id, never
    /// can. In [0, 1].
    #[arg(long, default_value_t = simulate::DEFAULT_BOUND_SHARE)]
    pub bound_share: f64,
    /// Data directory (browser corpora, IP lists, MaxMind test sources,
    /// uap-core rules) [default: $RISKGATE_SIM_DATA, else ../shared/data].
    #[arg(long, env = simulate::DATA_ENV)]
    pub data_dir: Option<PathBuf>,
    /// Use only the built-in tables, whatever `--data-dir` or the
    /// environment says.
    #[arg(long)]
    pub builtin: bool,
}

/// Runs `riskgate simulate`.
///
/// # Errors
///
/// A [`UsageError`] for bad settings or a missing `--data-dir`; other
/// errors when the data cannot be read or the output cannot be written.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let usage = |e: simulate::SimError| anyhow::Error::new(UsageError(e.to_string()));
    let mut cfg = SimConfig::new(args.seed, args.users, args.days);
    cfg.start_day = simulate::parse_date(&args.start).map_err(usage)?;
    cfg.attack_rate = args.attack_rate;
    cfg.bound_share = args.bound_share;
    if let Some(mix) = &args.attack_mix {
        cfg.mix = simulate::parse_mix(mix).map_err(usage)?;
    }
    cfg.validate().map_err(usage)?;

    let mut sources = if args.builtin {
        Sources::builtin()?
    } else {
        match Sources::locate(args.data_dir.as_deref()) {
            Some(dir) if dir.is_dir() => Sources::load(&dir)?,
            Some(dir) if args.data_dir.is_some() => {
                return Err(UsageError(format!(
                    "data directory `{}` does not exist",
                    dir.display()
                ))
                .into());
            }
            _ => Sources::builtin()?,
        }
    };

    let started = std::time::Instant::now();
    let summary = if args.out == "-" {
        // Stdout is line-buffered: a BufWriter hands it whole chunks.
        let stdout = io::stdout().lock();
        simulate::run(
            &cfg,
            &mut sources,
            BufWriter::with_capacity(1 << 16, stdout),
        )?
    } else {
        // The CSV writer buffers (64 KiB) and flushes at the end.
        let file =
            File::create(&args.out).with_context(|| format!("cannot create `{}`", args.out))?;
        simulate::run(&cfg, &mut sources, file)
            .with_context(|| format!("cannot write `{}`", args.out))?
    };
    let secs = started.elapsed().as_secs_f64();
    let mut err = io::stderr().lock();
    write!(err, "{summary}")?;
    writeln!(
        err,
        "generated in {secs:.2} s ({:.0} rows/s)",
        summary.rows as f64 / secs.max(1e-9)
    )?;
    Ok(())
}
