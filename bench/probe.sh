#!/usr/bin/env bash
# Benchmark `ckpt probe`: wall time, peak RSS and GFLOP/s of a forward pass of
# 8 tokens on a generated Qwen2-shaped BF16 checkpoint (0.5B, ~1 GB, by
# default; BIG=1: the 7B shape, ~15 GB in 4 shards, the issue's target of
# < 60 s and < 1.5 GB on this 2-core machine). The first run reads from disk,
# the next ones from the page cache; the median of ROUNDS runs is printed.
#
#   bash bench/probe.sh
#   BIG=1 BENCH_DIR=/big/dir ROUNDS=3 bash bench/probe.sh
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
ROUNDS=${ROUNDS:-3}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

bench_setup
if [[ -n ${BIG:-} ]]; then
  arch=qwen2-7b shards=4 params=7615616512
else
  arch=qwen2-0.5b shards=1 params=494032768
fi
ck=$work/$arch
if [[ ! -f $ck/config.json ]]; then
  echo "== generating a $arch checkpoint in $ck" >&2
  "$bin/ckpt-synth" checkpoint --arch "$arch" --dtype bf16 --shards "$shards" --seed 1 -o "$ck" >&2
fi
cat "$ck"/*.safetensors >/dev/null # page cache
times=()
for ((r = 0; r < ROUNDS; r++)); do
  times+=("$(timeit "$bin/ckpt" probe --dtype f16 "$ck")")
done
t=$(echo "${times[*]}" | median)
rss=$(rss_mb "$bin/ckpt" probe --dtype f16 "$ck")
# 2 flops per weight per token (the embedding is a lookup, counted anyway).
gflops=$(awk -v p="$params" -v t="$t" 'BEGIN {printf "%.2f", 2 * p * 8 / t / 1e9}')
echo "ckpt probe, $arch bf16 served in f16, 8 tokens: median ${t}s over $ROUNDS runs, peak RSS ${rss} MB, ${gflops} GFLOP/s"
