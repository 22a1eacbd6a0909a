#!/usr/bin/env bash
# A one-node Slurm cluster on localhost for the tests of split scans
# (docs/cluster.md): munged, slurmctld and slurmd from Debian's slurm-wlm and
# munge packages, every file (configuration, key, state, logs, sockets) in DIR.
#
#   scripts/slurm-test-cluster.sh start DIR   start it; prints the line to source
#                                             (export SLURM_CONF=DIR/slurm.conf)
#   scripts/slurm-test-cluster.sh stop DIR    stop the daemons started in DIR
#
# It runs as root (the daemons run as root on this throwaway cluster; CI runs
# as root). SLURM_TEST_PORT (default 6817) is the controller's port, the next
# one slurmd's. Install the packages with scripts/install-test-deps.sh.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

stop() {
  for d in slurmd slurmctld munged; do
    f="$dir/$d.pid"
    if [ -s "$f" ]; then
      pid=$(cat "$f")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$f"
    fi
  done
}

start() {
  for b in munged mungekey slurmctld slurmd sinfo sbatch; do
    command -v "$b" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
    command -v "$b" >/dev/null 2>&1 || { echo "slurm-test-cluster: $b not found; install slurm-wlm and munge (scripts/install-test-deps.sh as root)" >&2; exit 3; }
  done
  [ "$(id -u)" = 0 ] || { echo "slurm-test-cluster: must run as root (the test cluster's daemons run as root)" >&2; exit 3; }
  mkdir -p "$dir"/state "$dir"/spool "$dir"/munge
  dir=$(cd "$dir" && pwd)
  port=${SLURM_TEST_PORT:-6817}
  chmod 700 "$dir/munge"
  [ -s "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/munge.seed"
  cat >"$dir/slurm.conf" <<CONF
ClusterName=ckpttest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -i -f "$SLURM_CONF"
  slurmd -N localhost -f "$SLURM_CONF"
  for _ in $(seq 300); do
    state=$(sinfo -h -N -o %T 2>/dev/null || true)
    case "$state" in
    idle*|mixed*|allocated*) echo "export SLURM_CONF=$SLURM_CONF"; return 0 ;;
    esac
    sleep 0.1
  done
  echo "slurm-test-cluster: the node did not come up within 30 s (state: ${state:-none}); logs in $dir:" >&2
  tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
  stop
  exit 1
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
