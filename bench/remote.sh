#!/usr/bin/env bash
# Remote scan throughput (issue 16): ckpt scan of a ~253 MB BF16 checkpoint
# from the local disk and over HTTP on localhost, against what loopback
# carries in the same round. Each round runs the Go benchmark
# BenchmarkScanRemote once (local scan, scan from net/http's ServeContent,
# scan from nginx with sendfile on, the plain HTTP read limit of each server,
# the raw TCP sendfile limit, and what TCP and Unix-domain sockets carry
# from memory at all) and then curl's download of the file from
# nginx; the table gives the median of the per-round ratios.
#
#   bash bench/remote.sh               # 3 rounds; ROUNDS=5, BENCHTIME=5x
#
# nginx is Debian's nginx-light (apt-get install nginx-light), started here on
# a free port and stopped at the end; without it the peer rows are left out.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
ROUNDS=${ROUNDS:-3}
BENCHTIME=${BENCHTIME:-3x}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-remote-bench.XXXXXX")
chmod 755 "$work" # nginx workers may run as another user
nginx_pid=
cleanup() {
  [[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

peer=
nginx=$(command -v nginx || echo /usr/sbin/nginx)
if [[ -x $nginx ]]; then
  port=$((20000 + RANDOM % 20000))
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
  sendfile on;
  tcp_nopush on;
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$port; root $work/data; }
}
CONF
  mkdir -p "$work/data"
  "$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
  nginx_pid=$!
  peer=http://127.0.0.1:$port
  sleep 0.5
else
  echo "nginx not found (apt-get install nginx-light): the peer rows are left out" >&2
fi

declare -A mbs # mbs[NAME] = "MB/s of each round"
for ((r = 1; r <= ROUNDS; r++)); do
  out=$(cd "$root" && CKPT_BENCH_DIR=$work/data CKPT_BENCH_PEER=$peer \
    go test ./cmd/ckpt -run '^$' -bench ScanRemote -benchtime "$BENCHTIME" -count 1)
  while read -r name v; do
    mbs[$name]+="$v "
  done < <(awk '/^BenchmarkScanRemote\// {n = $1; sub(/^BenchmarkScanRemote\//, "", n); sub(/-[0-9]+$/, "", n); for (i = 1; i < NF; i++) if ($(i + 1) == "MB/s") print n, $i}' <<<"$out")
  if [[ -n $peer ]]; then
    v=$(curl -s -o /dev/null -w '%{speed_download}' "$peer/ckpt/model.safetensors" | awk '{printf "%.2f", $1 / 1e6}')
    mbs[curl]+="$v "
  fi
  echo "  round $r: $(for k in "${!mbs[@]}"; do printf '%s %s MB/s, ' "$k" "$(echo "${mbs[$k]}" | awk '{print $NF}')"; done)" >&2
done

# ratio A B: median of the per-round ratios of throughputs A / B
ratio_of() { ratio "${mbs[$1]}" "${mbs[$2]}"; }
echo "ckpt remote speed: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS rounds of $BENCHTIME"
echo
echo "| throughput | median MB/s | against the local scan | against its server's HTTP read limit | against loopback TCP (tcp-limit) |"
echo "| --- | --- | --- | --- | --- |"
row() { # row LABEL NAME [LIMIT]
  local lim=-
  [[ -n ${3:-} ]] && lim=$(printf '%.2f' "$(ratio_of "$2" "$3")")
  printf '| %s | %.0f | %.2f | %s | %.2f |\n' "$1" "$(echo "${mbs[$2]}" | median)" "$(ratio_of "$2" local)" "$lim" "$(ratio_of "$2" tcp-limit)"
}
row "ckpt scan, local file" local
row "ckpt scan over HTTP (net/http ServeContent)" http http-read-limit
[[ -n $peer ]] && row "ckpt scan over HTTP (nginx, sendfile on)" peer-http peer-http-read-limit
row "HTTP read limit, net/http (6 × 8 MiB ranges, nothing done)" http-read-limit
[[ -n $peer ]] && row "HTTP read limit, nginx" peer-http-read-limit
[[ -n $peer ]] && row "curl, one GET of the whole file from nginx" curl
row "loopback TCP, sendfile, 6 connections (tcp-limit)" tcp-limit
row "loopback TCP, from memory, 2 connections, 4 MiB reads" tcp-memory-limit
row "Unix-domain socket, from memory, 2 connections, 4 MiB reads" unix-memory-limit
