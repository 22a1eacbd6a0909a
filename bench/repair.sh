#!/usr/bin/env bash
# Benchmark of `ckpt repair` against `cp` of the same bytes, on a generated
# Qwen2-0.5B-shaped BF16 checkpoint (~1 GB, page-cached) with NaN/Inf in a few
# tensors, repaired from a healthy checkpoint of the same model.
#
# A repair does more than copy: it scans BAD and GOOD (the plan), writes the
# output (tensor bytes copied by the kernel with copy_file_range, as cp does,
# while two goroutines compute the SHA-256 of BAD's and GOOD's files for the
# provenance; then fsync), and re-reads and scans the output (verification)
# before renaming it into place.
# The write phase is what compares with a copy: its throughput (bytes written /
# write_seconds from `--json`) is set against `cp` + fsync of the same file
# (cp alone, which leaves the data in the page cache, is shown too). The whole
# command's time and its peak RSS (bounded by the copy chunk, not the model)
# are reported as well. Paired rounds; outputs are removed between runs, untimed.
#
#   bash bench/repair.sh
#   ROUNDS=9 BENCH_DIR=/big/dir bash bench/repair.sh
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
ROUNDS=${ROUNDS:-5}
ARCH=${ARCH:-qwen2-0.5b}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

if [[ -n ${BENCH_DIR:-} ]]; then
  work=$BENCH_DIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-bench.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
bin=$work/bin
mkdir -p "$bin"
echo "== building ckpt, ckpt-synth" >&2
(cd "$root" && go build -o "$bin/ckpt" ./cmd/ckpt && go build -o "$bin/ckpt-synth" ./cmd/ckpt-synth)

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
repair() { "$bin/ckpt" repair "$bad" --from "$good" -o "$out" --no-progress --json >"$json"; }
field() { sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" "$json"; }
copy() { mkdir -p "$out" && cp "$bad/model.safetensors" "$out/"; }
# wall, user and system seconds of cp + fsync
copysync_stats() {
  /usr/bin/time -f '%e %U %S' sh -c 'mkdir -p "$1" && cp "$2" "$1/" && sync "$1/model.safetensors"' _ "$out" "$bad/model.safetensors" 2>&1 >/dev/null | tail -1
}

declare -A times
echo "== $ROUNDS rounds, $bytes bytes per copy" >&2
for ((r = 1; r <= ROUNDS; r++)); do
  rm -rf "$out"
  t=$(timeit repair)
  times[repair]+="$t "
  w=$(field write_seconds)
  times[write]+="$w "
  times[write_cpu]+="$(field write_cpu_seconds) "
  times[scan]+="$(field scan_seconds) "
  times[verify]+="$(field verify_seconds) "
  written=$(field bytes_written)
  rm -rf "$out"
  read -r cw cu cs <<<"$(copysync_stats)"
  times[cpsync]+="$cw "
  times[cpsync_cpu]+="$(awk -v u="$cu" -v s="$cs" 'BEGIN {print u + s}') "
  rm -rf "$out"
  times[cp]+="$(timeit copy) "
  rm -rf "$out"
  echo "round $r: repair ${t}s (write phase ${w}s), cp+sync $(echo "${times[cpsync]}" | awk '{print $NF}')s" >&2
done
grep -q '"written":true' "$json" || { echo "the last repair did not write a verified output" >&2; exit 2; }
rss=$(rss_mb "$bin/ckpt" repair "$bad" --from "$good" -o "$out" --no-progress)
rm -rf "$out"

med() { echo "${times[$1]}" | median; }
echo
echo "ckpt repair benchmark: $ARCH BF16, $bytes bytes per copy ($written written by repair), $ROUNDS paired rounds, $(nproc) CPUs"
printf '  repair write phase  median %.3f s  %s GB/s  (copy + SHA-256 of the inputs beside it + fsync)\n' "$(med write)" "$(gbps "$written" "$(med write)")"
printf '  cp + fsync          median %.3f s  %s GB/s\n' "$(med cpsync)" "$(gbps "$bytes" "$(med cpsync)")"
printf '  cp (no fsync)       median %.3f s  %s GB/s\n' "$(med cp)" "$(gbps "$bytes" "$(med cp)")"
printf '  write throughput, repair / (cp + fsync): %.2f of cp\n' "$(ratio "${times[cpsync]}" "${times[write]}")"
printf '  write throughput, repair / cp:           %.2f of cp\n' "$(ratio "${times[cp]}" "${times[write]}")"
printf '  CPU per GB written: repair write phase %.2f s, cp + fsync %.2f s (all threads, user + system)\n' \
  "$(awk -v t="$(med write_cpu)" -v n="$written" 'BEGIN {print t / n * 1e9}')" "$(awk -v t="$(med cpsync_cpu)" -v n="$bytes" 'BEGIN {print t / n * 1e9}')"
printf '  whole command       median %.3f s  (plan scans %.3f s, write %.3f s, verify %.3f s)\n' \
  "$(med repair)" "$(med scan)" "$(med write)" "$(med verify)"
printf '  peak RSS of a repair: %s MB\n' "$rss"
