#!/usr/bin/env bash
# An S3-compatible server on localhost for the tests of remote reading
# (docs/remote-testing.md): SeaweedFS's `weed server -s3` (master, volume
# server, filer and S3 gateway in one process), built from the Go module proxy,
# with an identity whose fixed key pair the tests sign their requests with.
#
#   scripts/s3-test-server.sh build        build weed once into the cache; prints its path
#   scripts/s3-test-server.sh start [DIR]  start it with its files in DIR; prints the
#                                          lines to source (AWS_ENDPOINT_URL and the key pair)
#   scripts/s3-test-server.sh stop [DIR]   stop the server started in DIR and delete its data
#
# DIR defaults to $CKPT_TEST_S3_DIR, else ${TMPDIR:-/tmp}/ckpt-test-s3-$UID. start
# is idempotent: when the server of DIR answers already, it prints the same lines.
# It finds eight free ports on 127.0.0.1 (or takes them from CKPT_TEST_S3_PORT
# on). With CKPT_TEST_S3_OWNER=PID the server is stopped, and DIR deleted, once
# that process has exited (a test binary passes its own pid, so a crashed or
# killed test leaves nothing running).
#
# The binary is cached in ${CKPT_TEST_CACHE:-$HOME/.cache/ckpt-test}/weed-VERSION:
# `build` compiles it there when it is missing (up to 20 minutes; the module's
# go.mod has replace directives, so `go install mod@version` refuses it and it
# is built as the main module from a copy of the module proxy's source). start
# does not build: without the binary it exits with status 3.
#
#   eval "$(scripts/s3-test-server.sh start)"; go run ./cmd/ckpt scan s3://bucket/ckpt
set -euo pipefail

# The SeaweedFS release the tests run against (its module needs Go >= 1.26.6).
WEED_MODULE=github.com/seaweedfs/seaweedfs
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6

# The one identity of the test server: full rights, fixed keys (SigV4 is
# exercised; nothing here is a secret).
ACCESS_KEY=ckpt-test-access-key
SECRET_KEY=ckpt-test-secret-key-0123456789abcdef
REGION=us-east-1

script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cache=${CKPT_TEST_CACHE:-${HOME:-/tmp}/.cache/ckpt-test}
bin=$cache/weed-$WEED_VERSION/weed

usage() { echo "usage: $0 build | start [DIR] | stop [DIR]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
cmd=$1
dir=${2:-${CKPT_TEST_S3_DIR:-${TMPDIR:-/tmp}/ckpt-test-s3-$(id -u)}}

log() { echo "s3-test-server: $*" >&2; }

build() {
  if [ -x "$bin" ]; then
    echo "$bin"
    return 0
  fi
  command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null 2>&1 || { log "go not found (needed to build weed)"; exit 3; }
  local work src start
  start=$(date +%s)
  work=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-weed-build.XXXXXX")
  # The module's source from the proxy (read-only in the module cache), copied
  # to a writable directory and built there as the main module.
  src=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$WEED_MODULE@$WEED_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ -z "$src" ] || [ ! -d "$src" ]; then
    rm -rf "$work"
    log "go mod download $WEED_MODULE@$WEED_VERSION gave no source directory"
    exit 1
  fi
  cp -R "$src" "$work/src"
  chmod -R u+w "$work/src"
  mkdir -p "$(dirname "$bin")"
  log "building weed $WEED_VERSION into $bin (minutes, once)"
  if ! (cd "$work/src" && GOFLAGS=-mod=mod go build -o "$bin.tmp" ./weed); then
    rm -rf "$work" "$bin.tmp"
    log "building weed failed"
    exit 1
  fi
  mv "$bin.tmp" "$bin"
  rm -rf "$work"
  log "built $bin in $(($(date +%s) - start)) s"
  echo "$bin"
}

# status PORT PATH prints the HTTP status code of GET PATH on 127.0.0.1:PORT
# (bash's /dev/tcp: no curl needed), or nothing when nothing answers.
status() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
    IFS=' ' read -r -t 5 _ code _ <&3 || true
    echo "${code:-}"
  ) 2>/dev/null
}

# listening PORT succeeds when something accepts connections on it.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_base prints a port p such that p..p+7 have no listener, below Linux's
# ephemeral ports (32768 on), so that no outgoing connection takes one.
free_base() {
  local p i ok
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12760))
    ok=1
    for i in 0 1 2 3 4 5 6 7; do
      if listening $((p + i)); then ok=0; break; fi
    done
    if [ $ok = 1 ]; then echo "$p"; return 0; fi
  done
  log "no eight free ports found"
  exit 1
}

print_env() {
  echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$(cat "$dir/s3.port")"
  echo "export AWS_ACCESS_KEY_ID=$ACCESS_KEY"
  echo "export AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
  echo "export AWS_REGION=$REGION"
}

# running succeeds when the server of DIR is alive and its S3 gateway answers.
running() {
  [ -s "$dir/weed.pid" ] && [ -s "$dir/s3.port" ] && kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null &&
    [ "$(status "$(cat "$dir/s3.port")" /healthz)" = 200 ]
}

stop() {
  local f pid port
  for f in watchdog weed; do
    if [ -s "$dir/$f.pid" ]; then
      pid=$(cat "$dir/$f.pid")
      # The data is thrown away: two seconds for a clean exit, then SIGKILL.
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$f.pid"
    fi
  done
  if [ -s "$dir/ports" ]; then
    # weed's gRPC sockets are always /tmp/seaweedfs-NAME-grpc-PORT.sock.
    for port in $(cat "$dir/ports"); do rm -f /tmp/seaweedfs-*-grpc-"$port".sock; done
  fi
  rm -rf "$dir/data" "$dir/probe" "$dir/s3.json" "$dir/s3.port" "$dir/ports" "$dir/weed.log" "$dir"/*.sock
  rmdir "$dir" 2>/dev/null || true
}

# writable PORT succeeds when signed requests to the S3 gateway on PORT can
# create a bucket, write, delete (curl --aws-sigv4). A fresh server answers
# GET /healthz seconds before it takes writes: its master defers the first
# volume allocation and its filer joins the lock ring late. Without curl it
# succeeds at once (the first write then waits inside the server).
writable() {
  command -v curl >/dev/null 2>&1 || return 0
  local url="http://127.0.0.1:$1/ckpt-ready-probe"
  local c=(curl -s -o /dev/null -w '%{http_code}' -m 60 --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY")
  printf 'ready\n' >"$dir/probe"
  case "$("${c[@]}" -X PUT "$url")" in 200 | 409) ;; *) return 1 ;; esac
  [ "$("${c[@]}" -T "$dir/probe" "$url/probe")" = 200 ] &&
    [ "$("${c[@]}" -X DELETE "$url/probe")" = 204 ] &&
    [ "$("${c[@]}" -X DELETE "$url")" = 204 ] &&
    rm -f "$dir/probe"
}

# launch PORT starts weed with its ports from PORT on and waits until its S3
# gateway answers (GET /healthz) and takes writes (writable); it fails when
# weed exits or 60 s pass.
launch() {
  local base=$1 pid
  local master=$base volume=$((base + 1)) filer=$((base + 2)) s3=$((base + 3))
  echo "$base $((base + 1)) $((base + 2)) $((base + 3)) $((base + 4)) $((base + 5)) $((base + 6)) $((base + 7))" >"$dir/ports"
  echo "$s3" >"$dir/s3.port"
  # Small volumes, grown one at a time (each bucket is a collection with its
  # own volumes), sparse on disk; the Go heap held near 512 MiB.
  (
    cd "$dir"
    WEED_MASTER_VOLUME_GROWTH_COPY_1=1 GOMEMLIMIT=512MiB exec "$bin" server -s3 \
      -ip=127.0.0.1 -dir="$dir/data" \
      -master.port=$master -master.port.grpc=$((base + 4)) \
      -volume.port=$volume -volume.port.grpc=$((base + 5)) \
      -filer.port=$filer -filer.port.grpc=$((base + 6)) \
      -s3.port=$s3 -s3.port.grpc=$((base + 7)) \
      -s3.port.iceberg=0 -s3.port.lance=0 \
      -s3.config="$dir/s3.json" \
      -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock" \
      -master.volumeSizeLimitMB=64 -volume.max=100 -volume.preStopSeconds=0 \
      -master.telemetry=false \
      >"$dir/weed.log" 2>&1 </dev/null
  ) &
  pid=$!
  echo "$pid" >"$dir/weed.pid"
  for _ in $(seq 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    if [ "$(status "$s3" /healthz)" = 200 ] && writable "$s3"; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

start() {
  if running; then
    print_env
    return 0
  fi
  [ -x "$bin" ] || { log "$bin not found; build it with: $0 build"; exit 3; }
  stop
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  cat >"$dir/s3.json" <<JSON
{"identities": [{"name": "ckpt-test",
  "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  local attempt base
  for attempt in 1 2 3; do
    base=${CKPT_TEST_S3_PORT:-$(free_base)}
    if launch "$base"; then
      break
    fi
    log "weed did not come up (attempt $attempt, ports from $base); the end of $dir/weed.log:"
    tail -n 20 "$dir/weed.log" >&2 || true
    kill "$(cat "$dir/weed.pid")" 2>/dev/null || true
    sleep 0.5
    kill -9 "$(cat "$dir/weed.pid")" 2>/dev/null || true
    if [ $attempt = 3 ] || [ -n "${CKPT_TEST_S3_PORT:-}" ]; then
      stop
      exit 1
    fi
  done
  if [ -n "${CKPT_TEST_S3_OWNER:-}" ]; then
    # Stops the server once the owner has exited.
    (
      trap '' HUP
      while kill -0 "$CKPT_TEST_S3_OWNER" 2>/dev/null; do sleep 1; done
      rm -f "$dir/watchdog.pid"
      bash "$script" stop "$dir"
    ) >/dev/null 2>&1 </dev/null &
    echo $! >"$dir/watchdog.pid"
  fi
  print_env
}

case "$cmd" in
build) [ $# -eq 1 ] || usage; build ;;
start) start ;;
stop) stop ;;
*) usage ;;
esac
