#!/usr/bin/env bash
# GGUF scans against the read limit (issue 12): a 0.5B-shaped model written as
# GGUF with every matrix in F16, Q8_0 or Q4_K, a Q4_K_M-like mix (Q6_K for
# the embeddings, attn_v and ffn_down of every other layer, Q4_K elsewhere),
# and the same mix with llama.cpp's fallback for rows not a multiple of 256
# wide (Q5_0 for Q4_K, Q8_0 for Q6_K: Q4_K_M-rows, like a real Qwen2-0.5B
# Q4_K_M file; and, when KINDS names them, Q5_K and the Q5_K_M mix, Q5_K for
# Q4_K), quantized from normal weights (inspect's TestBenchGGUFFiles
# writes them),
# in the page cache. Each round runs ckpt scan, then OLD's scan if OLD names
# another ckpt binary (a paired before/after), then memread
# (../shared/bench/memread.c, pread, all cores) over the same file. Prints a
# markdown table: CPU s/GB (user + system seconds per GB, median of the
# rounds) and the median of the per-round ratios of CPU seconds to memread's.
#
#   bash bench/gguf.sh
#   OLD=/path/to/old/ckpt ROUNDS=5 KINDS="Q8_0 Q4_K" bash bench/gguf.sh
#   KINDS="Q5_K Q5_K_M Q5_K_M-rows" bash bench/gguf.sh   # also: every matrix Q5_K; the Q5_K_M mix (-rows: Q5_1 for short rows)
#   KINDS=Q4_0 bash bench/gguf.sh                     # also: every matrix Q4_0
#   KINDS=Q2_K bash bench/gguf.sh                     # also: every matrix Q2_K
#   KINDS="IQ4_XS Q4_1" bash bench/gguf.sh            # also: every matrix IQ4_XS, Q4_1
#   KINDS="Q3_K Q3_K_M" bash bench/gguf.sh            # also: every matrix Q3_K; the Q3_K_M mix (Q3_K, Q4_K, Q5_K, Q6_K)
#   KINDS=MXFP4 bash bench/gguf.sh                    # also: every matrix MXFP4
#   go test -bench 'BlockStatsPaths/(Q4_K|Q6_K)' ./inspect/   # the kernels alone, values/s per core
#
# Each command reads the file REPEAT times (ckpt scan FILE FILE ...; memread
# of the same list), so that the CPU seconds are well above the clock's tick.
# Env: SHARED, BENCH_DIR (keep the data), ROUNDS (3), THREADS (2), KINDS,
# ARCH (qwen2-0.5b), OLD, REPEAT (5).
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SHARED=${SHARED:-$root/../shared/bench}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
KINDS=${KINDS:-F16 Q8_0 Q4_K Q4_K_M Q4_K_M-rows}
ARCH=${ARCH:-qwen2-0.5b}
OLD=${OLD:-}
REPEAT=${REPEAT:-5}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

bench_setup
cc -O3 -march=native -pthread -o "$bin/memread" "$SHARED/memread.c"
data=$work/gguf-$ARCH
missing=()
for k in $KINDS; do [[ -f $data/$k.gguf ]] || missing+=("$k"); done
if ((${#missing[@]})); then
  echo "== writing the GGUF files ${missing[*]} ($ARCH) to $data" >&2
  mkdir -p "$data"
  (cd "$root" && CKPT_GGUF_BENCH_DIR=$data CKPT_GGUF_BENCH_KINDS="${missing[*]}" CKPT_BENCH_ARCH=$ARCH \
    go test -count=1 -run '^TestBenchGGUFFiles$' ./inspect/ >&2)
fi

gb() { awk -v b="$1" 'BEGIN {print b / 1e9}'; }
perGB() { echo "$1" | median | awk -v g="$2" '{printf "%.3f", $1 / g}'; }

if [[ -n $OLD ]]; then
  echo "| file | size | before: CPU s/GB | after: CPU s/GB | memread CPU s/GB | before ÷ memread | after ÷ memread |"
  echo "|---|---|---|---|---|---|---|"
else
  echo "| file | size | ckpt scan CPU s/GB | memread CPU s/GB | ckpt ÷ memread |"
  echo "|---|---|---|---|---|"
fi
for k in $KINDS; do
  f=$data/$k.gguf
  files=()
  for ((i = 0; i < REPEAT; i++)); do files+=("$f"); done
  bytes=$(sizeof "${files[@]}")
  cat "$f" >/dev/null
  cat "$f" >/dev/null
  newc=() oldc=() limc=()
  for ((r = 0; r < ROUNDS; r++)); do
    read -r _ c < <(timed "$bin/ckpt" scan --json "${files[@]}")
    newc+=("$c")
    if [[ -n $OLD ]]; then
      read -r _ c < <(timed "$OLD" scan --json "${files[@]}")
      oldc+=("$c")
    fi
    read -r _ c < <(timed env READ=1 "$bin/memread" "$THREADS" "${files[@]}")
    limc+=("$c")
    echo "  $k round $((r + 1)): ckpt ${newc[r]} CPU s${OLD:+, old ${oldc[r]:-}}, memread ${limc[r]}" >&2
  done
  g=$(gb "$bytes")
  size=$(awk -v g="$g" -v r="$REPEAT" 'BEGIN {printf "%.2f GB", g / r}')
  if [[ -n $OLD ]]; then
    printf '| %s | %s | %s | %s | %s | %.2f× | %.2f× |\n' "$k" "$size" "$(perGB "${oldc[*]}" "$g")" "$(perGB "${newc[*]}" "$g")" \
      "$(perGB "${limc[*]}" "$g")" "$(ratio "${oldc[*]}" "${limc[*]}")" "$(ratio "${newc[*]}" "${limc[*]}")"
  else
    printf '| %s | %s | %s | %s | %.2f× |\n' "$k" "$size" "$(perGB "${newc[*]}" "$g")" "$(perGB "${limc[*]}" "$g")" "$(ratio "${newc[*]}" "${limc[*]}")"
  fi
done
