//! `riskgate`: parse the command line, load config, run, map errors to exit
//! codes (64 for bad usage or configuration, 1 for failures).

use std::process::ExitCode;

use clap::Parser;
use riskgate::cli::journal::JournalCommand;
use riskgate::cli::{
    Cli, Command, RulesCommand, admin, eval, journal, replay, serve, simulate, train,
};
use riskgate::config::Config;

const EX_USAGE: u8 = 64;

/// mimalloc instead of the system allocator: a gRPC call and a Redis
/// pipeline allocate and free dozens of small buffers, often on different
/// threads, and glibc's malloc was a fifth of the Redis-backed server's CPU
/// (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Replay, simulate and train are synchronous and single-threaded: no runtime.
    let command = match cli.command {
        Command::Replay(args) => return report(replay::run(args)),
        Command::Simulate(args) => return report(simulate::run(args)),
        Command::Train(args) => return report(train::run(args)),
        Command::Backtest(args) => return report(journal::run_backtest(args)),
        Command::Journal(JournalCommand::Stats { journal, json }) => {
            return report(journal::run_stats(&journal, json));
        }
        Command::Openapi => return report(openapi()),
        other => other,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("riskgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Serve(args) => {
            let config = match Config::from_env(&serve::overrides(&args)) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("riskgate: {e}");
                    return ExitCode::from(EX_USAGE);
                }
            };
            if args.print_config {
                // Debug redacts every `Secret` (HMAC key, Redis URLs); TLS
                // settings are file paths.
                use std::io::Write as _;
                let _ = writeln!(std::io::stdout(), "{config:#?}");
                return ExitCode::SUCCESS;
            }
            report(runtime.block_on(serve::run(config)))
        }
        Command::Eval(args) => report(runtime.block_on(eval::run_eval(args))),
        Command::Report(args) => report(runtime.block_on(eval::run_report(args))),
        Command::Health { addr, tls } => report(runtime.block_on(eval::run_health(&addr, &tls))),
        Command::Rules(RulesCommand::Check { file }) => {
            if riskgate::cli::rules::check(&file) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Rules(RulesCommand::Explain {
            file,
            features,
            score,
        }) => report(riskgate::cli::rules::explain(&file, &features, score)),
        Command::Bench(args) => report(runtime.block_on(riskgate::tools::bench::run(args))),
        Command::Admin(args) => report(runtime.block_on(admin::run(args))),
        Command::Replay(args) => report(replay::run(args)),
        Command::Simulate(args) => report(simulate::run(args)),
        Command::Train(args) => report(train::run(args)),
        Command::Backtest(args) => report(journal::run_backtest(args)),
        Command::Journal(JournalCommand::Stats { journal, json }) => {
            report(journal::run_stats(&journal, json))
        }
        Command::Openapi => report(openapi()),
    }
}

fn openapi() -> anyhow::Result<()> {
    use std::io::Write as _;
    std::io::stdout().write_all(riskgate::api::openapi::render()?.as_bytes())?;
    Ok(())
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("riskgate: {e:#}");
            if e.downcast_ref::<eval::UsageError>().is_some() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
