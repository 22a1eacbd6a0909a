#!/usr/bin/env bash
# Builds ggml's own dequantizers into a test filter (scripts/ggml-dequant.c)
# that formats/ggml's TestDequantizersMatchGGMLSource holds ckpt's
# dequantizers to, bit for bit. ggml's C source (ggml-quants.c, ggml-common.h,
# ggml-impl.h) comes from the Go module proxy: the ollama module vendors ggml,
# and GGML_MODULE@GGML_VERSION pins the release (read-only in the module
# cache; nothing of it enters the repository).
#
#   scripts/ggml-reference.sh build    build once into the cache; prints the binary's path
#
# The binary is cached in ${CKPT_TEST_CACHE:-$HOME/.cache/ckpt-test}/ggml-dequant-VERSION-HASH
# (HASH: of scripts/ggml-dequant.c, so a changed filter is rebuilt). Needs Go
# (to download the module) and a C compiler (cc). ggml's C is compiled with
# -ffp-contract=off: the dequantizers' float32 operations as the C source
# writes them, one rounding each, the semantics ckpt reproduces (a build with
# -march=native may fuse a multiply and an add into one FMA).
set -euo pipefail

GGML_MODULE=github.com/ollama/ollama
GGML_VERSION=v0.17.4
GGML_DIR=ml/backend/ggml/ggml # ggml's tree inside the module

here=$(cd "$(dirname "$0")" && pwd)
cache=${CKPT_TEST_CACHE:-${HOME:-/tmp}/.cache/ckpt-test}
hash=$(sha256sum "$here/ggml-dequant.c" | cut -c1-12)
bin=$cache/ggml-dequant-$GGML_VERSION-$hash

log() { echo "ggml-reference: $*" >&2; }

[ "${1:-}" = build ] && [ $# = 1 ] || { echo "usage: $0 build" >&2; exit 2; }
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || { log "go not found (needed to download ggml's source)"; exit 3; }
command -v cc >/dev/null 2>&1 || { log "cc not found (a C compiler builds ggml's dequantizers)"; exit 3; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-ggml-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$GGML_MODULE@$GGML_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
ggml=$src/$GGML_DIR
if [ -z "$src" ] || [ ! -f "$ggml/src/ggml-quants.c" ]; then
  log "go mod download $GGML_MODULE@$GGML_VERSION gave no ggml source (looked for $ggml/src/ggml-quants.c)"
  exit 1
fi
mkdir -p "$cache"
cc -O2 -ffp-contract=off -w -I"$ggml/include" -I"$ggml/src" -c "$ggml/src/ggml-quants.c" -o "$work/ggml-quants.o"
cc -O2 -ffp-contract=off -Wall -Werror -isystem "$ggml/include" -isystem "$ggml/src" -c "$here/ggml-dequant.c" -o "$work/ggml-dequant.o"
cc -o "$work/ggml-dequant" "$work/ggml-quants.o" "$work/ggml-dequant.o" -lm
mv "$work/ggml-dequant" "$bin"
log "built $bin from $GGML_MODULE@$GGML_VERSION"
echo "$bin"
