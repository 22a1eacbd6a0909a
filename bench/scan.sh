#!/usr/bin/env bash
# Benchmark `ckpt scan` against the read limit of this machine (memread.c) and a
# numpy peer, on a generated Qwen2-0.5B-shaped BF16 checkpoint (~1 GB) in the
# page cache. Paired: each round runs every contender once, in turn; medians of
# the times and of the per-round ratios are printed. Ratios are the result, not
# the absolute times (the machine is shared).
#
#   bash bench/scan.sh                 # 5 rounds, temp dir removed afterwards
#   ROUNDS=9 BENCH_DIR=/big/dir bash bench/scan.sh
#   BIG=1 bash bench/scan.sh           # also peak RSS of ckpt scan on a 15 GB Qwen2-7B-shaped checkpoint
#
# Env: SHARED (default: <repo>/../shared/bench) holds memread.c and
# peer_numpy_scan.py; BENCH_DIR keeps the generated data (not removed);
# ROUNDS (5); THREADS for memread (2); NO_PEER=1 skips the numpy peer.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SHARED=${SHARED:-$root/../shared/bench}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-2}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

bench_setup
echo "== building memread" >&2
cc -O3 -march=native -pthread -o "$bin/memread" "$SHARED/memread.c"

peer=()
if [[ -z ${NO_PEER:-} ]]; then
  if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    if [[ $(id -u) == 0 ]]; then
      echo "== installing python3-numpy (Debian) for the peer" >&2
      apt-get update -qq >&2 && apt-get install -y -qq python3-numpy >&2
    else
      echo "numpy is missing and this is not root: install python3-numpy or set NO_PEER=1" >&2
      exit 2
    fi
  fi
  # OpenBLAS overrides set on some machines slow a current numpy: unset them for
  # the peer's command only.
  peer=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$SHARED/peer_numpy_scan.py")
fi

ck=$work/qwen2-0.5b-bf16
if [[ ! -f $ck/model.safetensors ]]; then
  echo "== generating $ck" >&2
  "$bin/ckpt-synth" checkpoint --arch qwen2-0.5b --dtype bf16 --seed 1 -o "$ck" >&2
fi
files=("$ck"/*.safetensors)
bytes=$(sizeof "${files[@]}")

# warm the page cache (twice: the first read may evict something else)
cat "${files[@]}" >/dev/null
cat "${files[@]}" >/dev/null

names=(pread mmap limit)
declare -A cmd
cmd[pread]="$bin/ckpt scan --source pread --json $ck"
cmd[mmap]="$bin/ckpt scan --source mmap --json $ck"
cmd[limit]="env READ=1 $bin/memread $THREADS ${files[*]}"
if ((${#peer[@]})); then
  names+=(peer)
fi
declare -A times
echo "== $ROUNDS rounds over $bytes bytes" >&2
for ((r = 1; r <= ROUNDS; r++)); do
  line="round $r:"
  for n in "${names[@]}"; do
    if [[ $n == peer ]]; then
      t=$(timeit "${peer[@]}" "$ck")
    else
      # shellcheck disable=SC2086
      t=$(timeit ${cmd[$n]})
    fi
    times[$n]+="$t "
    line+=$(printf ' %s %.3fs' "$n" "$t")
  done
  echo "$line" >&2
done

echo
echo "ckpt scan benchmark: $(basename "$ck"), $bytes bytes page-cached, $ROUNDS paired rounds, $(nproc) CPUs"
for n in "${names[@]}"; do
  m=$(echo "${times[$n]}" | median)
  printf '  %-6s median %.3f s  (%s GB/s)\n' "$n" "$m" "$(gbps "$bytes" "$m")"
done
printf '  ckpt scan --source pread / read limit: %.2fx\n' "$(ratio "${times[pread]}" "${times[limit]}")"
printf '  ckpt scan --source mmap  / read limit: %.2fx\n' "$(ratio "${times[mmap]}" "${times[limit]}")"
printf '  ckpt scan --source mmap  / pread:      %.2fx\n' "$(ratio "${times[mmap]}" "${times[pread]}")"
if ((${#peer[@]})); then
  printf '  numpy peer / ckpt scan (pread):        %.1fx\n' "$(ratio "${times[peer]}" "${times[pread]}")"
  printf '  numpy peer / ckpt scan (mmap):         %.1fx\n' "$(ratio "${times[peer]}" "${times[mmap]}")"
fi

# (mapped file pages that are touched count in the RSS of an mmap scan)
printf '  peak RSS of ckpt scan (pread): %s MB, (mmap): %s MB\n' \
  "$(rss_mb "$bin/ckpt" scan --source pread --json "$ck")" \
  "$(rss_mb "$bin/ckpt" scan --source mmap --json "$ck")"

if [[ -n ${BIG:-} ]]; then
  big=$work/qwen2-7b-bf16
  need=$((16 * 1024 * 1024)) # KiB
  avail=$(df -Pk "$work" | awk 'NR==2 {print $4}')
  if [[ ! -f $big/model.safetensors.index.json ]] && ((avail < need)); then
    echo "BIG=1: $((avail / 1024 / 1024)) GiB free in $work, 16 GiB needed; skipped" >&2
  else
    if [[ ! -f $big/model.safetensors.index.json ]]; then
      echo "== generating $big (15 GB)" >&2
      "$bin/ckpt-synth" checkpoint --arch qwen2-7b --dtype bf16 --shards 4 --seed 1 -o "$big" >&2
    fi
    bigbytes=$(sizeof "$big"/*.safetensors)
    printf '  Qwen2-7B-shaped, %s bytes in 4 shards: peak RSS of ckpt scan (pread) %s MB, (mmap) %s MB\n' "$bigbytes" \
      "$(rss_mb "$bin/ckpt" scan --source pread --json "$big")" \
      "$(rss_mb "$bin/ckpt" scan --source mmap --json "$big")"
  fi
fi
