#!/usr/bin/env bash
# train-with-watch.sh RUN_DIR KEEP_DIR TRAIN_COMMAND [ARGS...]
#
# Runs a training command and `ckpt watch` beside it on its output directory:
# each checkpoint is scanned once written and compared with the one before,
# the last healthy one is kept in KEEP_DIR where rotation (save_total_limit)
# cannot delete it, and when a checkpoint goes bad training is stopped (TERM)
# and the script exits 1. When training ends first, the watcher checks the
# last save and the script exits with the training command's status.
#
# Env: CKPT (the ckpt binary, default ckpt), CKPT_POLL (how often watch looks,
# default 10s: inotify misses writes from other nodes of a shared file
# system), CKPT_EXIT_ON (unhealthy or drift, default unhealthy),
# CKPT_WATCH_LOG (watch's JSON Lines events, default RUN_DIR.watch.jsonl),
# CKPT_FINAL_WAIT (seconds given to the watcher after training ends, default
# twice the poll interval plus 10). Needs bash 5.1 (wait -n -p).
set -u
if [ $# -lt 3 ]; then
  echo "usage: train-with-watch.sh RUN_DIR KEEP_DIR TRAIN_COMMAND [ARGS...]" >&2
  exit 2
fi
run=$1 keep=$2
shift 2
ckpt=${CKPT:-ckpt}
poll=${CKPT_POLL:-10s}
log=${CKPT_WATCH_LOG:-${run%/}.watch.jsonl}
mkdir -p "$run" "$keep" || exit 2

"$@" &
train=$!
"$ckpt" watch --json --poll "$poll" --keep "$keep" --exit-on "${CKPT_EXIT_ON:-unhealthy}" "$run" >>"$log" &
watch=$!
trap 'kill -TERM "$train" "$watch" 2>/dev/null' INT TERM

done_pid=
wait -n -p done_pid "$train" "$watch"
status=$?
if [ "$done_pid" = "$watch" ]; then
  echo "train-with-watch: ckpt watch exited with status $status (events in $log); stopping training" >&2
  kill -TERM "$train" 2>/dev/null
  wait "$train"
  echo "train-with-watch: the last good checkpoints are kept in $keep (see $keep/kept.json)" >&2
  exit 1
fi
# Training ended: give the watcher time to check the last save, then stop it.
secs=${poll%s}
case $secs in *[!0-9]*) secs=1 ;; esac
final=${CKPT_FINAL_WAIT:-$((2 * secs + 10))}
for ((i = 0; i < final * 10; i++)); do
  kill -0 "$watch" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$watch" 2>/dev/null; then
  kill -TERM "$watch"
  wait "$watch"
else
  wait "$watch"
  w=$?
  if [ "$w" -ne 0 ]; then
    echo "train-with-watch: ckpt watch exited with status $w after training ended (events in $log)" >&2
    exit 1
  fi
fi
exit "$status"
