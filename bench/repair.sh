#!/usr/bin/env bash
# Benchmark of `ckpt repair` against `cp` of the same bytes, on a generated
# Qwen2-0.5B-shaped BF16 checkpoint (~1 GB, page-cached) with NaN/Inf in a few
# tensors, repaired from a healthy checkpoint of the same model.
#
# A repair does more than copy: it scans BAD and GOOD (the plan), writes the
# output (tensor bytes copied by the kernel with copy_file_range, as cp does,
# while two goroutines compute the SHA-256 digests of the provenance: BAD's
# files whole, and every tensor taken from GOOD; then fsync), and re-reads and
# scans the output (verification) before renaming it into place. The write
# phase is what compares with a copy: its throughput (bytes written /
# write_seconds from `--json`) is set against `cp` + fsync of the same file
# (cp alone, which leaves the data in the page cache, is shown too), for the
# default strategy (3 tensors from GOOD) and for --strategy all (every tensor
# from GOOD: the most hashing a repair does). CPU seconds per GB (all threads)
# are printed too: on a shared machine they, not the wall time, say what each
# costs. Peak RSS shows memory bounded by the copy chunk, not the model.
# Paired rounds; outputs are removed between runs, untimed.
#
#   bash bench/repair.sh
#   ROUNDS=9 BENCH_DIR=/big/dir bash bench/repair.sh
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
ROUNDS=${ROUNDS:-5}
ARCH=${ARCH:-qwen2-0.5b}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

bench_setup

good=$work/repair-good-$ARCH
bad=$work/repair-bad-$ARCH
if [[ ! -f $good/model.safetensors ]]; then
  echo "== generating $good and $bad" >&2
  "$bin/ckpt-synth" checkpoint --arch "$ARCH" --seed 1 -o "$good" >&2
fi
if [[ ! -f $bad/model.safetensors ]]; then
  "$bin/ckpt-synth" checkpoint --arch "$ARCH" --seed 2 -o "$bad" >&2
  for t in model.layers.3.mlp.down_proj.weight model.layers.17.self_attn.q_proj.weight model.norm.weight; do
    "$bin/ckpt-synth" corrupt set-values "$bad" --tensor "$t" --elem 0=nan --elem 5=inf >&2
  done
fi
bytes=$(sizeof "$bad/model.safetensors")
cat "$good/model.safetensors" "$bad/model.safetensors" >/dev/null

out=$work/repair-out
json=$work/repair.json
repair() { "$bin/ckpt" repair "$bad" --from "$good" -o "$out" --strategy "$1" --no-progress --json >"$json"; }
field() { sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" "$json"; }
copy() { mkdir -p "$out" && cp "$bad/model.safetensors" "$out/"; }
# wall, user and system seconds of cp + fsync
copysync_stats() {
  /usr/bin/time -f '%e %U %S' sh -c 'mkdir -p "$1" && cp "$2" "$1/" && sync "$1/model.safetensors"' _ "$out" "$bad/model.safetensors" 2>&1 >/dev/null | tail -1
}

declare -A times written_sc
echo "== $ROUNDS rounds, $bytes bytes per copy" >&2
# Two repairs per round: the default strategy (3 damaged tensors replaced, BAD's
# files hashed whole) and --strategy all (every tensor from GOOD: BAD's files
# and all of GOOD's tensor bytes hashed, the most hashing a repair does).
strategies=(tensors all)
for ((r = 1; r <= ROUNDS; r++)); do
  line="round $r:"
  for sc in "${strategies[@]}"; do
    rm -rf "$out"
    t=$(timeit repair "$sc")
    times[repair_$sc]+="$t "
    w=$(field write_seconds)
    times[write_$sc]+="$w "
    times[write_cpu_$sc]+="$(field write_cpu_seconds) "
    times[scan_$sc]+="$(field scan_seconds) "
    times[verify_$sc]+="$(field verify_seconds) "
    written_sc[$sc]=$(field bytes_written)
    grep -q '"written":true' "$json" || { echo "repair --strategy $sc did not write a verified output" >&2; exit 2; }
    line+=" $sc ${t}s (write ${w}s),"
  done
  rm -rf "$out"
  read -r cw cu cs <<<"$(copysync_stats)"
  times[cpsync]+="$cw "
  times[cpsync_cpu]+="$(awk -v u="$cu" -v s="$cs" 'BEGIN {print u + s}') "
  rm -rf "$out"
  times[cp]+="$(timeit copy) "
  rm -rf "$out"
  echo "$line cp+sync ${cw}s" >&2
done
rss=$(rss_mb "$bin/ckpt" repair "$bad" --from "$good" -o "$out" --no-progress)
rm -rf "$out"

med() { echo "${times[$1]}" | median; }
cpu_per_gb() { awk -v t="$(med "$1")" -v n="$2" 'BEGIN {printf "%.2f", t / n * 1e9}'; }
echo
echo "ckpt repair benchmark: $ARCH BF16, $bytes bytes per copy, $ROUNDS paired rounds, $(nproc) CPUs"
printf '  cp + fsync              median %.3f s  %s GB/s  CPU %s s/GB\n' "$(med cpsync)" "$(gbps "$bytes" "$(med cpsync)")" "$(cpu_per_gb cpsync_cpu "$bytes")"
printf '  cp (no fsync)           median %.3f s  %s GB/s  (the data is still in the page cache)\n' "$(med cp)" "$(gbps "$bytes" "$(med cp)")"
for sc in "${strategies[@]}"; do
  written=${written_sc[$sc]}
  printf '  repair --strategy %-7s write phase median %.3f s  %s GB/s  CPU %s s/GB  = %.2f of cp+fsync (%s bytes written)\n' \
    "$sc" "$(med "write_$sc")" "$(gbps "$written" "$(med "write_$sc")")" "$(cpu_per_gb "write_cpu_$sc" "$written")" \
    "$(ratio "${times[cpsync]}" "${times[write_$sc]}")" "$written"
  printf '  %-25s whole command median %.3f s (plan scans %.3f, write %.3f, verify %.3f)\n' \
    "" "$(med "repair_$sc")" "$(med "scan_$sc")" "$(med "write_$sc")" "$(med "verify_$sc")"
done
printf '  peak RSS of a repair: %s MB\n' "$rss"
