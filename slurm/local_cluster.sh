#!/bin/bash
# A real single-node Slurm on this machine, for trying rsnet's launcher and for the tests.
#
#   slurm/local_cluster.sh start     # prints the export lines to use it
#   eval "$(slurm/local_cluster.sh env)"; sbatch slurm/launch_ray.sh sweeps/demo.yaml
#   slurm/local_cluster.sh status | stop
#
# Uses Debian's slurm-wlm and munge (apt-get install slurm-wlm munge), run directly as root
# with a private SLURM_CONF, munge key and socket under $RSNET_SLURM_DIR (default
# /tmp/rsnet-slurm), so it touches no system-wide Slurm. Settings that work on a plain VM or
# container: proctrack/linuxproc, task/none, no accounting (so no sacct: submitit warns
# "Bypassing sacct error" and still reads results).
set -euo pipefail
DIR=${RSNET_SLURM_DIR:-/tmp/rsnet-slurm}
CONF=$DIR/slurm.conf
SOCK=$DIR/munge.socket
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
CTLD_PORT=${RSNET_SLURMCTLD_PORT:-26817}
SLURMD_PORT=${RSNET_SLURMD_PORT:-26818}

env_lines() { echo "export SLURM_CONF=$CONF"; }

start() {
    for exe in munged slurmctld slurmd sbatch; do
        command -v $exe >/dev/null || { echo "local_cluster: $exe missing: apt-get install slurm-wlm munge" >&2; exit 1; }
    done
    if status >/dev/null 2>&1; then echo "local_cluster: already running"; env_lines; return; fi
    mkdir -p "$DIR"/{state,spool,log,munge}
    chmod 700 "$DIR/munge"
    [ -s "$DIR/munge/munge.key" ] || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
    cat > "$CONF" <<CONF
ClusterName=rsnet-local
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=10
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
    munged --socket="$SOCK" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munged.pid" \
        --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munge.seed" --force
    SLURM_CONF=$CONF slurmctld -f "$CONF" -i
    SLURM_CONF=$CONF slurmd -f "$CONF"
    for i in $(seq 1 30); do
        if SLURM_CONF=$CONF sinfo -h -o %t 2>/dev/null | grep -qE "idle|mix|alloc"; then
            echo "local_cluster: Slurm is up ($HOST, $CPUS CPUs) under $DIR"; env_lines; return
        fi
        sleep 1
    done
    echo "local_cluster: Slurm did not come up; logs in $DIR/log" >&2
    stop >/dev/null      # nothing of a failed start is left running
    exit 1
}

stop() {
    # jobs still running are cancelled while the controller is there to do it
    local pid
    if pid=$(cat "$DIR/slurmctld.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ -f "$CONF" ]; then
        SLURM_CONF=$CONF scancel --quiet --user "$(id -un)" 2>/dev/null || true
        for i in $(seq 1 20); do
            [ -z "$(SLURM_CONF=$CONF squeue -h -u "$(id -un)" 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    for d in slurmd slurmctld munged; do
        f=$DIR/$d.pid
        if [ -s "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
    done
    for i in $(seq 1 20); do
        alive=0
        for d in slurmd slurmctld munged; do
            f=$DIR/$d.pid; [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1
        done
        [ $alive = 0 ] && break
        sleep 0.5
    done
    for d in slurmd slurmctld munged; do      # what a polite signal did not end in 10 s
        f=$DIR/$d.pid; [ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    # a job step's daemon outlives slurmd; this cluster's run in its log folder
    for p in $(pgrep -x slurmstepd); do
        case "$(readlink "/proc/$p/cwd" 2>/dev/null)" in "$DIR"/*) kill -9 "$p" 2>/dev/null || true ;; esac
    done
    rm -f "$DIR"/*.pid
    echo "local_cluster: stopped"
}

status() {
    # sinfo retries an absent controller for about a minute: ask only when ours is running
    local pid
    pid=$(cat "$DIR/slurmctld.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ -f "$CONF" ] \
        || { echo "local_cluster: not running"; return 1; }
    SLURM_CONF=$CONF sinfo -h -o "%P %D %t %C" 2>/dev/null || { echo "local_cluster: not running"; return 1; }
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) env_lines ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
