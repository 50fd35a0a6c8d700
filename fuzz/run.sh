#!/usr/bin/env bash
# Runs one fuzz target for a bounded time on the stable toolchain:
#   bash fuzz/run.sh TARGET [SECONDS]     (TARGET: grpc_convert, rules_parse, model_json, rba_csv)
# libFuzzer with coverage instrumentation, no sanitizer (ASan needs
# nightly; riskgate forbids unsafe code, so panics, hangs and runaway
# memory are what there is to find). Seeds: the shipped rule file and
# model, and the hand-written RBA CSV fixture. Crashes land in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
target="${1:?usage: fuzz/run.sh TARGET [SECONDS]}"
seconds="${2:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
mkdir -p "corpus/$target"
case "$target" in
  rules_parse) seeds=(../rules) ;;
  model_json) seeds=(../models) ;;
  rba_csv) seeds=(../testdata) ;;
  *) seeds=() ;;
esac
# -timeout: one input taking over 10 s is a hang; -rss_limit_mb: 2 GiB.
cargo fuzz run --sanitizer none -O "$target" "corpus/$target" "${seeds[@]}" -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
