# Helpers shared by the bench scripts (sourced, not run).

# seconds a command takes (wall clock), its output discarded; exit 2+ is a failure
timeit() {
  local t0 t1 rc=0
  t0=$EPOCHREALTIME
  "$@" >/dev/null 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  if ((rc >= 2)); then
    echo "failed (exit $rc): $*" >&2
    exit 2
  fi
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f\n", b - a}'
}

# timed CMD...: "wall cpu" of one run (cpu = user + system seconds)
timed() {
  local out rc=0
  out=$(mktemp)
  /usr/bin/time -f '%e %U %S' -o "$out" "$@" >/dev/null 2>&1 || rc=$?
  if ((rc >= 2)); then
    echo "failed (exit $rc): $*" >&2
    exit 2
  fi
  tail -n 1 "$out" | awk '{printf "%s %.3f\n", $1, $2 + $3}'
  rm -f "$out"
}

# median of the numbers on stdin (space or newline separated)
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# median of the per-round ratios of two space-separated lists of times
ratio() {
  local -a a=($1) b=($2)
  for ((i = 0; i < ${#a[@]}; i++)); do awk -v x="${a[i]}" -v y="${b[i]}" 'BEGIN {printf "%.6f\n", x / y}'; done | median
}

# total size in bytes of the given files
sizeof() { stat -c %s "$@" | awk '{s += $1} END {printf "%.0f\n", s}'; }

# peak resident set size of a command, in MB
rss_mb() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print int($2 / 1024)}'; }

# gbps BYTES SECONDS
gbps() { awk -v n="$1" -v t="$2" 'BEGIN {printf "%.2f", n / t / 1e9}'; }

# bench_setup: the work directory ($work: $BENCH_DIR, kept, or a temporary one
# removed on exit) and freshly built binaries in $bin (ckpt, ckpt-synth).
bench_setup() {
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
}
