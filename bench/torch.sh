#!/usr/bin/env bash
# PyTorch files against their peers (issues 10 and 11), in paired rounds on a
# 2-core machine shared with other jobs: ratios are the result, never the
# absolute times.
#
#   pickle  unpickling a 1,000-tensor data.pkl (go test -bench): ours against
#           gopickle (nlpodyssey) on the same bytes, and against the issue's
#           20 ms budget
#   scan    `ckpt scan` of a Qwen2-0.5B-shaped BF16 checkpoint saved with
#           torch.save (pytorch_model.bin, zip) against the same tensors as
#           safetensors (its `ckpt convert`), each also against memread over
#           its files; peak RSS of both
#   convert `ckpt convert` of that .bin (written, fsynced, re-read and
#           compared byte for byte) against `cp` + fsync of the same file
#   optim   `ckpt scan` of a Trainer-like directory whose optimizer.pt holds
#           AdamW moments (fp32) of a Qwen2-shaped model, OPTIM_LAYERS layers
#           (6: about 1.8 GB of moments; the issue's 0.5B-shaped model has
#           about 4 GB), against memread over the bytes it reads; peak RSS
#
# The checkpoints are written by torch.save through Debian's python3-torch
# (/usr/bin/python3). Prints a markdown table (docs/performance.md holds a run).
#
#   bash bench/torch.sh
#   CASES="scan convert" ROUNDS=5 BENCH_DIR=/big/dir bash bench/torch.sh
#
# Env: SHARED, BENCH_DIR (keep the data), ROUNDS (3), THREADS (2), CASES,
# OPTIM_LAYERS (6).
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SHARED=${SHARED:-$root/../shared/bench}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CASES=${CASES:-pickle scan convert optim}
OPTIM_LAYERS=${OPTIM_LAYERS:-6}
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

bench_setup
cc -O3 -march=native -pthread -o "$bin/memread" "$SHARED/memread.c"
$PY -c 'import torch' || { echo "$PY cannot import torch: install python3-torch" >&2; exit 2; }

# The Qwen2 shapes: vocabulary, hidden, intermediate, q heads × 64, kv heads × 64.
gen_py='
import json, os, sys, torch
kind, out, layers = sys.argv[1], sys.argv[2], int(sys.argv[3])
V, H, I, Q, KV = 151936, 896, 4864, 896, 128
torch.manual_seed(0)
names = [("model.embed_tokens.weight", (V, H))]
for i in range(layers):
    p = "model.layers.%d." % i
    names += [(p + "self_attn.q_proj.weight", (Q, H)), (p + "self_attn.q_proj.bias", (Q,)),
              (p + "self_attn.k_proj.weight", (KV, H)), (p + "self_attn.k_proj.bias", (KV,)),
              (p + "self_attn.v_proj.weight", (KV, H)), (p + "self_attn.v_proj.bias", (KV,)),
              (p + "self_attn.o_proj.weight", (H, Q)), (p + "mlp.gate_proj.weight", (I, H)),
              (p + "mlp.up_proj.weight", (I, H)), (p + "mlp.down_proj.weight", (H, I)),
              (p + "input_layernorm.weight", (H,)), (p + "post_attention_layernorm.weight", (H,))]
names.append(("model.norm.weight", (H,)))
os.makedirs(out, exist_ok=True)
sd = {n: (torch.randn(s) * 0.02).to(torch.bfloat16) for n, s in names}
torch.save(sd, os.path.join(out, "pytorch_model.bin"))
json.dump({"model_type": "qwen2", "hidden_size": H, "intermediate_size": I, "num_hidden_layers": layers,
           "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": V, "tie_word_embeddings": True},
          open(os.path.join(out, "config.json"), "w"))
if kind == "optim":
    # AdamW state in the Trainer'"'"'s two groups (decay first), ids in that order.
    nodecay = lambda n: "bias" in n or "norm" in n
    order = [n for n, _ in names if not nodecay(n)] + [n for n, _ in names if nodecay(n)]
    shape = dict(names)
    state = {}
    for i, n in enumerate(order):
        state[i] = {"step": torch.tensor(100.0), "exp_avg": torch.randn(shape[n]) * 1e-3,
                    "exp_avg_sq": torch.rand(shape[n]) * 1e-6}
    n0 = sum(1 for n in order if not nodecay(n))
    groups = [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False, "params": list(range(n0))},
              {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False, "params": list(range(n0, len(order)))}]
    torch.save({"state": state, "param_groups": groups}, os.path.join(out, "optimizer.pt"))
    json.dump({"global_step": 100, "log_history": []}, open(os.path.join(out, "trainer_state.json"), "w"))
'

# rounds NAME CMD...: time CMD in every round into t_NAME (wall) and c_NAME (CPU)
declare -A T C
once() { # once NAME CMD...: one timed run, appended to T[NAME] and C[NAME]
  local name=$1 w c
  shift
  read -r w c < <(timed "$@")
  T[$name]+="$w " C[$name]+="$c "
}
med() { echo "${T[$1]}" | median; }
cpugb() { echo "${C[$1]}" | median | awk -v b="$2" '{printf "%.2f", $1 / (b / 1e9)}'; }
row() { # row LABEL NAME PEER BYTES: "| label | ckpt | peer | ratio | ckpt CPU s/GB | peer CPU s/GB |"
  printf '| %s | %.2f s | %.2f s | %.2f× | %s | %s |\n' "$1" "$(med "$2")" "$(med "$3")" "$(ratio "${T[$2]}" "${T[$3]}")" "$(cpugb "$2" "$4")" "$(cpugb "$3" "$4")"
}

echo "ckpt PyTorch bench: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS paired rounds, page cache warm"
echo
echo "| work | ckpt | peer | ratio (ckpt / peer) | ckpt CPU s/GB | peer CPU s/GB |"
echo "| --- | --- | --- | --- | --- | --- |"
for c in $CASES; do
  case $c in
    pickle)
      out=$(cd "$root" && go test -run '^$' -bench 'Unpickle1000Tensors' -count "$ROUNDS" ./formats/pickle)
      ours=$(awk '$1 ~ /^BenchmarkUnpickle1000Tensors-/ {print $3}' <<<"$out" | tr '\n' ' ')
      peer=$(awk '$1 ~ /^BenchmarkUnpickle1000TensorsGopickle-/ {print $3}' <<<"$out" | tr '\n' ' ')
      printf '| unpickle a 1,000-tensor data.pkl (peer: gopickle, same bytes) | %.1f ms | %.1f ms | %.2f× | | |\n' \
        "$(echo "$ours" | median | awk '{print $1 / 1e6}')" "$(echo "$peer" | median | awk '{print $1 / 1e6}')" "$(ratio "$ours" "$peer")"
      printf '| the same, against the issue'"'"'s 20 ms budget | | | %.2f× | | |\n' "$(echo "$ours" | median | awk '{print $1 / 20e6}')"
      ;;
    scan | convert)
      bd=$work/q05-bin sd=$work/q05-st
      if [[ ! -f $bd/pytorch_model.bin ]]; then
        echo "== torch.save of the 0.5B-shaped checkpoint" >&2
        $PY -c "$gen_py" weights "$bd" 24 >&2
      fi
      [[ -f $sd/model.safetensors ]] || "$bin/ckpt" convert "$bd/pytorch_model.bin" -o "$sd" >&2
      bbytes=$(sizeof "$bd/pytorch_model.bin") sbytes=$(sizeof "$sd/model.safetensors")
      if [[ $c == scan ]]; then
        cat "$bd/pytorch_model.bin" "$sd/model.safetensors" >/dev/null
        for ((r = 0; r < ROUNDS; r++)); do
          once scanbin "$bin/ckpt" scan --json --no-progress "$bd"
          once memreadbin env READ=1 "$bin/memread" "$THREADS" "$bd/pytorch_model.bin"
          once scanst "$bin/ckpt" scan --json --no-progress "$sd"
          once memreadst env READ=1 "$bin/memread" "$THREADS" "$sd/model.safetensors"
          echo "  scan round $((r + 1)): .bin $(echo "${T[scanbin]}" | awk '{print $NF}')s, safetensors $(echo "${T[scanst]}" | awk '{print $NF}')s" >&2
        done
        row "scan, 0.5B-shaped, \`.bin\` (torch.save zip, $(awk -v b="$bbytes" 'BEGIN {printf "%.2f GB", b / 1e9}')) against the same as safetensors" scanbin scanst "$bbytes"
        row "scan of the \`.bin\` against memread of it" scanbin memreadbin "$bbytes"
        row "scan of the safetensors against memread of it" scanst memreadst "$sbytes"
        printf '| peak RSS: scan of the .bin %s MB, of the safetensors %s MB | | | | | |\n' \
          "$(rss_mb "$bin/ckpt" scan --json --no-progress "$bd")" "$(rss_mb "$bin/ckpt" scan --json --no-progress "$sd")"
      else
        out=$work/convert-out
        cat "$bd/pytorch_model.bin" >/dev/null
        for ((r = 0; r < ROUNDS; r++)); do
          rm -rf "$out"
          once convert "$bin/ckpt" convert "$bd/pytorch_model.bin" -o "$out"
          rm -rf "$out"
          once cpsync sh -c 'mkdir -p "$1" && cp "$2" "$1/" && sync "$1/pytorch_model.bin"' _ "$out" "$bd/pytorch_model.bin"
          rm -rf "$out"
          echo "  convert round $((r + 1)): convert $(echo "${T[convert]}" | awk '{print $NF}')s, cp+fsync $(echo "${T[cpsync]}" | awk '{print $NF}')s" >&2
        done
        row "convert the 0.5B-shaped \`.bin\` (write, fsync, re-read, compare) against cp + fsync" convert cpsync "$bbytes"
        printf '| convert throughput as a share of cp + fsync: %.0f%% | | | | | |\n' "$(ratio "${T[cpsync]}" "${T[convert]}" | awk '{print $1 * 100}')"
        printf '| peak RSS of convert: %s MB | | | | | |\n' "$(rm -rf "$out"; rss_mb "$bin/ckpt" convert "$bd/pytorch_model.bin" -o "$out")"
        rm -rf "$out"
      fi
      ;;
    optim)
      od=$work/optim-$OPTIM_LAYERS
      if [[ ! -f $od/optimizer.pt ]]; then
        echo "== torch.save of AdamW state for $OPTIM_LAYERS layers" >&2
        $PY -c "$gen_py" optim "$od" "$OPTIM_LAYERS" >&2
      fi
      obytes=$(sizeof "$od/optimizer.pt") all=$(sizeof "$od/optimizer.pt" "$od/pytorch_model.bin")
      cat "$od/optimizer.pt" "$od/pytorch_model.bin" >/dev/null
      for ((r = 0; r < ROUNDS; r++)); do
        once optdir "$bin/ckpt" scan --json --no-progress "$od"
        once memreadall env READ=1 "$bin/memread" "$THREADS" "$od/optimizer.pt" "$od/pytorch_model.bin"
        once optfile "$bin/ckpt" scan --json --no-progress "$od/optimizer.pt"
        once memreadopt env READ=1 "$bin/memread" "$THREADS" "$od/optimizer.pt"
        echo "  optimizer round $((r + 1)): dir $(echo "${T[optdir]}" | awk '{print $NF}')s, optimizer.pt $(echo "${T[optfile]}" | awk '{print $NF}')s" >&2
      done
      gb=$(awk -v b="$obytes" 'BEGIN {printf "%.2f GB", b / 1e9}')
      row "scan of a Trainer directory: optimizer.pt ($gb of AdamW moments) + weights, with the predicted update, against memread of both" optdir memreadall "$all"
      row "scan of that optimizer.pt given directly (named from the weights beside it) against memread of it" optfile memreadopt "$obytes"
      printf '| peak RSS: scan of the directory %s MB, of optimizer.pt %s MB | | | | | |\n' \
        "$(rss_mb "$bin/ckpt" scan --json --no-progress "$od")" "$(rss_mb "$bin/ckpt" scan --json --no-progress "$od/optimizer.pt")"
      ;;
    *)
      echo "unknown case $c" >&2
      exit 2
      ;;
  esac
done
