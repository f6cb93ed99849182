#!/usr/bin/env bash
# The Muster pipeline benchmark, in one command (see Benchmarks/README.md):
#
#   Benchmarks/run.sh
#
# 1. builds the release binaries as they are installed (scripts/build-release) into
#    .build-release (never the default .build),
# 2. generates the HAProxy log once into Benchmarks/out/ (git-ignored),
# 3. runs (a) agent → discard receiver, (a) the rsyslogd and Fluent Bit peers (Fluent Bit from
#    ../shared/peers, skipped when missing), (b) agent → collector → SQLite, (b) the collector
#    alone (the agent's batches replayed), (b) the store's insert path and (b) a plain SQLite
#    table (the true ceiling), each REPS times, and prints
#    the table of medians and targets with the ratios between them,
#    also written to Benchmarks/results/latest.md (raw figures: Benchmarks/out/latest-runs.json).
#
# Environment: LINES (default 2000000), SEED (42), REPS (3), STAGES (all), TIMEOUT (240 s per stage).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cd "$repo"

LINES="${LINES:-2000000}"
SEED="${SEED:-42}"
REPS="${REPS:-3}"
STAGES="${STAGES:-a-agent,a-rsyslog,a-fluentbit,b-pipeline,b-collector,b-ceiling,b-plain}"
TIMEOUT="${TIMEOUT:-240}"
scratch="$repo/.build-release"

echo "== building release binaries as they are installed (scripts/build-release, scratch path $scratch)" >&2
bin_dir="$("$repo/scripts/build-release" --scratch-path "$scratch" muster-agent muster-collector muster-bench-insert)"

mkdir -p "$here/out" "$here/results"
log="$here/out/haproxy-${LINES}-s${SEED}.log"
if [[ ! -s "$log" ]]; then
    echo "== generating $log" >&2
    python3 "$here/gen_haproxy_log.py" --lines "$LINES" --seed "$SEED" --out "$log"
else
    echo "== reusing $log" >&2
fi

echo "== running the benchmark ($REPS runs per stage)" >&2
exec python3 "$here/pipeline_bench.py" \
    --bin-dir "$bin_dir" --log "$log" --seed "$SEED" --reps "$REPS" --stages "$STAGES" --timeout "$TIMEOUT" \
    --results "$here/results/latest.md" --json "$here/out/latest-runs.json"
