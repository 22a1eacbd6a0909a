#!/usr/bin/env bash
# Installs the Debian packages ckpt's tests use, when they are missing:
# chromium (the bisect HTML report is rendered headless in a test), python3-torch
# and python3-numpy (probe's logits are compared with a PyTorch forward pass;
# PyTorch checkpoints are written with torch.save), xmllint (libxml2-utils: JUnit
# reports are validated against a schema), pre-commit (the ckpt-scan hook is
# run as pre-commit runs it), slurm-wlm and munge (a one-node Slurm cluster
# runs a split scan as an array job). Then the S3-compatible test server:
# SeaweedFS's weed, built from the Go module proxy into a cache outside the
# repository once (scripts/s3-test-server.sh build; needs Go, not root), and
# ggml's own dequantizers, compiled from ggml's C source in the Go module cache
# (scripts/ggml-reference.sh build; needs Go and cc).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
/usr/bin/python3 -c "import torch, numpy" >/dev/null 2>&1 || need+=(python3-torch python3-numpy)
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
command -v pre-commit >/dev/null 2>&1 || need+=(pre-commit)
[ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] || need+=(slurm-wlm)
[ -x /usr/sbin/munged ] || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "install-test-deps: missing ${need[*]} (run as root to install); tests that need them skip, and fail when CI=true" >&2
  fi
fi

bash "$(dirname "$0")/s3-test-server.sh" build >/dev/null
bash "$(dirname "$0")/ggml-reference.sh" build >/dev/null
