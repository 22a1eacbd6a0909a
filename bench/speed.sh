#!/usr/bin/env bash
# Every command against the read limit (issue 15): scan, diff and bisect on
# generated Qwen2-shaped BF16 checkpoints in the page cache, each paired with
# memread (../shared/bench/memread.c, pread, all cores) over the same files,
# and (as root, COLD=1) scans with the page cache dropped before each run.
# Each round runs ckpt then memread; the ratio column is the median of the
# per-round ratios, CPU s/GB the median of user+system seconds per GB read.
# Prints a markdown table (docs/performance.md is regenerated from it).
#
#   bash bench/speed.sh                 # all cases, 3 rounds (needs ~35 GB free, ~20 GB RAM for the 7B cases)
#   CASES="scan05 diff" bash bench/speed.sh
#   COLD=1 bash bench/speed.sh          # as root: the cold-cache rows too
#
# Cases: scan05 (0.5B-shaped, 1 GB), scan7b (7B-shaped, 15.2 GB, one file),
# scan7b4 (the same in 4 shards), diff (two 0.5B-shaped checkpoints, every
# value changed), bisect (a run of 12 0.5B-shaped checkpoints, drift timeline),
# watch (ckpt watch --once over a run of two 0.5B-shaped checkpoints: the
# second is scanned and compared with the first in one pass; paired with the
# same work as separate commands, scan A, scan B, diff A B); and, not run by
# default, scan7b1 (the first of the 4 shards alone, 3.75 GB of 7B-shaped
# tensors: for machines that cannot hold 15 GB in the page cache; the other
# shards are deleted as soon as they are written).
# Env: SHARED, BENCH_DIR (keep the data), ROUNDS (3), THREADS (2), CASES.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SHARED=${SHARED:-$root/../shared/bench}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CASES=${CASES:-scan05 diff bisect scan7b scan7b4}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

bench_setup
cc -O3 -march=native -pthread -o "$bin/memread" "$SHARED/memread.c"
synth=$bin/ckpt-synth

# need GB: exit when less than GB gigabytes are free in $work
need() {
  local avail
  avail=$(df -Pk "$work" | awk 'NR==2 {print int($4 / 1024 / 1024)}')
  if ((avail < $1)); then
    echo "$1 GB needed in $work, $avail GB free: skipped" >&2
    return 1
  fi
}

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# row LABEL BYTES "CKPT CMD" FILES...: paired rounds of the ckpt command and
# memread over FILES; prints a table row. With COLDRUN set, the page cache is
# dropped before every run (else the files are read twice first).
row() {
  local label=$1 bytes=$2 cmd=$3
  shift 3
  local -a files=("$@") ck=() lim=() ckc=() limc=()
  local w c
  # Freshly generated files are still being written back: let that finish
  # before the timed rounds, whose page-cache reads it would slow.
  sync
  [[ -z ${COLDRUN:-} ]] && { cat "${files[@]}" >/dev/null; cat "${files[@]}" >/dev/null; }
  for ((r = 0; r < ROUNDS; r++)); do
    [[ -n ${COLDRUN:-} ]] && drop
    # shellcheck disable=SC2086
    read -r w c < <(timed env $cmd)
    ck+=("$w") ckc+=("$c")
    [[ -n ${COLDRUN:-} ]] && drop
    read -r w c < <(timed env READ=1 "$bin/memread" "$THREADS" "${files[@]}")
    lim+=("$w") limc+=("$c")
    echo "  $label round $((r + 1)): ckpt ${ck[r]}s (${ckc[r]} CPU s), memread ${lim[r]}s (${limc[r]} CPU s)" >&2
  done
  local gb
  gb=$(awk -v b="$bytes" 'BEGIN {print b / 1e9}')
  printf '| %s | %.2f s | %.2f s | %.2f× | %.2f | %.2f |\n' "$label" \
    "$(echo "${ck[*]}" | median)" "$(echo "${lim[*]}" | median)" "$(ratio "${ck[*]}" "${lim[*]}")" \
    "$(echo "${ckc[*]}" | median | awk -v g="$gb" '{print $1 / g}')" \
    "$(echo "${limc[*]}" | median | awk -v g="$gb" '{print $1 / g}')"
}

gen() { # gen DIR ARGS...: generate a checkpoint unless present
  local d=$1
  shift
  [[ -d $d ]] || "$synth" checkpoint "$@" -o "$d" >&2
}

echo "ckpt speed: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS paired rounds, page cache warm unless marked cold"
echo
echo "| work | ckpt | read limit (memread) | ratio | ckpt CPU s/GB | memread CPU s/GB |"
echo "| --- | --- | --- | --- | --- | --- |"
for c in $CASES; do
  case $c in
    scan05)
      d=$work/q05a
      gen "$d" --arch qwen2-0.5b --seed 1
      row "scan, 0.5B-shaped, $(sizeof "$d"/*.safetensors | awk '{printf "%.1f GB", $1/1e9}')" "$(sizeof "$d"/*.safetensors)" "$bin/ckpt scan --json $d" "$d"/*.safetensors
      if [[ -n ${COLD:-} ]]; then
        for h in none sequential willneed; do
          COLDRUN=1 row "scan, 0.5B-shaped, cold, CKPT_READAHEAD=$h" "$(sizeof "$d"/*.safetensors)" "CKPT_READAHEAD=$h $bin/ckpt scan --json $d" "$d"/*.safetensors
        done
      fi
      ;;
    diff)
      a=$work/q05a b=$work/q05b
      gen "$a" --arch qwen2-0.5b --seed 1
      gen "$b" --arch qwen2-0.5b --seed 2
      row "diff, two 0.5B-shaped, every value changed" "$(sizeof "$a"/*.safetensors "$b"/*.safetensors)" "$bin/ckpt diff --json $a $b" "$a"/*.safetensors "$b"/*.safetensors
      ;;
    bisect)
      run=$work/series
      need 14 || continue
      [[ -d $run ]] || "$synth" run --arch qwen2-0.5b --checkpoints 12 --nan-step -1 -o "$run" >&2
      mapfile -t sf < <(ls "$run"/checkpoint-*/*.safetensors)
      row "bisect + drift timeline, 12 × 0.5B-shaped" "$(sizeof "${sf[@]}")" "$bin/ckpt bisect --json --no-progress $run" "${sf[@]}"
      rm -rf "$run"
      ;;
    watch)
      run=$work/watchrun
      [[ -d $run ]] || "$synth" run --arch qwen2-0.5b --checkpoints 2 --jump-step 150 --nan-step -1 -o "$run" >&2
      a=$run/checkpoint-100 b=$run/checkpoint-200
      fa=("$a"/*.safetensors) fb=("$b"/*.safetensors)
      printf '%s scan --json %s; %s scan --json %s; %s diff --json %s %s\n' "$bin/ckpt" "$a" "$bin/ckpt" "$b" "$bin/ckpt" "$a" "$b" >"$bin/apart.sh"
      # watch reads A for its scan, then A again and B once for B's scan and
      # the comparison; the separate commands read A and B twice each.
      row "watch --once, 2 × 0.5B-shaped (scan A; scan B + diff A→B in one pass)" "$(sizeof "${fa[@]}" "${fa[@]}" "${fb[@]}")" \
        "$bin/ckpt watch --once --json $run" "${fa[@]}" "${fa[@]}" "${fb[@]}"
      row "the same as separate commands: scan A, scan B, diff A B" "$(sizeof "${fa[@]}" "${fb[@]}" "${fa[@]}" "${fb[@]}")" \
        "sh $bin/apart.sh" "${fa[@]}" "${fb[@]}" "${fa[@]}" "${fb[@]}"
      fused=() apart=()
      for ((r = 0; r < ROUNDS; r++)); do
        read -r w c < <(timed "$bin/ckpt" watch --once --json "$run")
        fused+=("$w")
        read -r w c < <(timed sh "$bin/apart.sh")
        apart+=("$w")
      done
      printf '| watch --once against the separate commands, paired | %.2f s | %.2f s | %.2f× | | |\n' \
        "$(echo "${fused[*]}" | median)" "$(echo "${apart[*]}" | median)" "$(ratio "${fused[*]}" "${apart[*]}")"
      rm -rf "$run"
      ;;
    scan7b1)
      need 17 || continue
      d=$work/q7b1
      "$synth" checkpoint --arch qwen2-7b --shards 4 --seed 1 -o "$d" >&2
      rm -f "$d"/model-0000[234]-of-00004.safetensors
      f=$d/model-00001-of-00004.safetensors
      row "scan, 7B-shaped, one of 4 shards, $(sizeof "$f" | awk '{printf "%.1f GB", $1/1e9}')" "$(sizeof "$f")" "$bin/ckpt scan --json $f" "$f"
      rm -rf "$d"
      ;;
    scan7b | scan7b4)
      need 17 || continue
      d=$work/q7b
      shards=1 label="one file"
      [[ $c == scan7b4 ]] && shards=4 label="4 shards"
      "$synth" checkpoint --arch qwen2-7b --shards "$shards" --seed 1 -o "$d" >&2
      row "scan, 7B-shaped, $label, $(sizeof "$d"/*.safetensors | awk '{printf "%.1f GB", $1/1e9}')" "$(sizeof "$d"/*.safetensors)" "$bin/ckpt scan --json $d" "$d"/*.safetensors
      printf '| peak RSS of that scan: %s MB | | | | | |\n' "$(rss_mb "$bin/ckpt" scan --json "$d")"
      if [[ -n ${COLD:-} && $c == scan7b ]]; then
        for h in none sequential willneed; do
          COLDRUN=1 row "scan, 7B-shaped, cold, CKPT_READAHEAD=$h" "$(sizeof "$d"/*.safetensors)" "CKPT_READAHEAD=$h $bin/ckpt scan --json $d" "$d"/*.safetensors
        done
      fi
      rm -rf "$d"
      ;;
    *)
      echo "unknown case $c" >&2
      exit 2
      ;;
  esac
done
