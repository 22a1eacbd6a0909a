#!/usr/bin/env bash
# Cold cache: `ckpt scan` of a checkpoint that is not in the page cache, against
# the read limit of the disk (memread.c with pread, cold) and cat, with each
# read-ahead hint of ckpt's pread source (CKPT_READAHEAD=none, sequential,
# willneed). Every run starts with the page cache dropped
# (echo 3 > /proc/sys/vm/drop_caches), so this needs root, and it slows
# whatever else the machine runs for a moment. Paired rounds; medians of the
# per-round ratios to memread are the result.
#
#   sudo bash bench/cold.sh                       # 3 rounds on a 1 GB checkpoint
#   ROUNDS=5 CKPT_DIR=/path/to/checkpoint sudo -E bash bench/cold.sh
#
# Env: SHARED (default: <repo>/../shared/bench) holds memread.c; BENCH_DIR
# keeps the generated data; CKPT_DIR scans that checkpoint instead of
# generating one; ROUNDS (3); THREADS for memread (2).
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SHARED=${SHARED:-$root/../shared/bench}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

if [[ $(id -u) != 0 ]]; then
  echo "cold.sh drops the page cache: run it as root" >&2
  exit 2
fi
bench_setup
cc -O3 -march=native -pthread -o "$bin/memread" "$SHARED/memread.c"

ck=${CKPT_DIR:-$work/qwen2-0.5b-bf16}
if [[ ! -d $ck ]]; then
  echo "== generating $ck" >&2
  "$bin/ckpt-synth" checkpoint --arch qwen2-0.5b --dtype bf16 --seed 1 -o "$ck" >&2
fi
files=("$ck"/*.safetensors)
bytes=$(sizeof "${files[@]}")

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
names=(memread cat none sequential willneed)
declare -A times cpu
for ((r = 1; r <= ROUNDS; r++)); do
  line="round $r:"
  for n in "${names[@]}"; do
    drop
    case $n in
      memread) c=(env READ=1 "$bin/memread" "$THREADS" "${files[@]}") ;;
      cat) c=(cat "${files[@]}") ;;
      *) c=(env CKPT_READAHEAD="$n" "$bin/ckpt" scan --json "$ck") ;;
    esac
    t=$(timeit "${c[@]}")
    times[$n]+="$t "
    line+=$(printf ' %s %.2fs' "$n" "$t")
  done
  echo "$line" >&2
done

echo
echo "cold-cache scan: $(basename "$ck"), $bytes bytes, page cache dropped before every run, $ROUNDS paired rounds, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${names[@]}"; do
  m=$(echo "${times[$n]}" | median)
  label=$n
  [[ $n == none || $n == sequential || $n == willneed ]] && label="ckpt scan, CKPT_READAHEAD=$n"
  printf '  %-40s median %.2f s  %s GB/s  throughput %.0f%% of memread cold\n' "$label" "$m" "$(gbps "$bytes" "$m")" \
    "$(awk -v x="$(ratio "${times[memread]}" "${times[$n]}")" 'BEGIN {print 100 * x}')"
done
