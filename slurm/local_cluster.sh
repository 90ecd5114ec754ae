#!/bin/bash
# A real Slurm of N nodes on this one machine, for trying rsnet's launcher and for the tests.
#
#   slurm/local_cluster.sh start [--nodes N]   # prints the export lines to use it
#   eval "$(slurm/local_cluster.sh env)"; sbatch --nodes=2 slurm/launch_ray.sh sweeps/demo.yaml
#   slurm/local_cluster.sh status | stop
#   slurm/local_cluster.sh crash-node node2     # every process of node2 killed, as when a machine dies
#   slurm/local_cluster.sh restart-node node2   # node2 back (its slurmd again), ready for the next job
#
# Each node is a slurmd in a network namespace of its own (and a UTS namespace, so it has its
# own hostname, node1..nodeN) with its own address, 10.77.0.(10+i), on a bridge that lives,
# with slurmctld and munged, in one more namespace (rsnet-ctl, 10.77.0.1). Every address is
# inside namespaces this script creates, so nothing of the cluster (Slurm's ports, the Ray a job
# starts) is reachable from outside them, and two clusters (other RSNET_SLURM_DIRs) never meet.
# Slurm's commands reach the controller through wrappers in $RSNET_SLURM_DIR/bin (on PATH after
# `env`); inside a node they are the plain commands. `stop` ends every process in the
# namespaces and deletes them, which takes their links with them.
#
# Needs root (namespaces; Slurm runs as root here) and Debian's slurm-wlm, munge and iproute2,
# with a private SLURM_CONF, munge key and socket under $RSNET_SLURM_DIR (default
# /tmp/rsnet-slurm), so it touches no system-wide Slurm. Settings that work on a plain VM or
# container: proctrack/linuxproc, task/none, no accounting (so no sacct: submitit warns
# "Bypassing sacct error" and still reads results). A requeued job starts again 10 s after its
# requeue (cred_expire; a real cluster's default is 120 s).
set -euo pipefail
DIR=${RSNET_SLURM_DIR:-/tmp/rsnet-slurm}
CONF=$DIR/slurm.conf
SOCK=$DIR/munge.socket
CPUS=$(nproc)
TAG=rs$(echo -n "$(realpath -m "$DIR")" | md5sum | cut -c1-6)   # this cluster's namespaces
CTL=$TAG-ctl
NET=10.77.0
CTLD_PORT=${RSNET_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${RSNET_SLURMD_PORT:-6818}

env_lines() { echo "export SLURM_CONF=$CONF PATH=$DIR/bin:\$PATH"; }
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
node_namespaces() { ip netns list | awk '{print $1}' | grep -E "^$TAG-node[0-9]+$" || true; }

start() {
    local n=1
    while [ $# -gt 0 ]; do
        case "$1" in
            --nodes) n=${2:?--nodes needs a number}; shift 2 ;;
            --nodes=*) n=${1#*=}; shift ;;
            *) echo "local_cluster: unknown option $1" >&2; exit 2 ;;
        esac
    done
    [[ "$n" =~ ^[1-9][0-9]?$ ]] || { echo "local_cluster: --nodes must be 1-99, not '$n'" >&2; exit 2; }
    for exe in munged slurmctld slurmd sbatch ip nsenter unshare; do
        command -v $exe >/dev/null || { echo "local_cluster: $exe missing: apt-get install slurm-wlm munge iproute2" >&2; exit 1; }
    done
    [ "$(id -u)" = 0 ] || { echo "local_cluster: needs root (network namespaces; Slurm runs as root here)" >&2; exit 1; }
    if status >/dev/null 2>&1; then echo "local_cluster: already running"; env_lines; return; fi
    stop >/dev/null 2>&1 || true   # whatever a crashed start left
    mkdir -p "$DIR"/{state,spool,log,munge,bin}
    chmod 700 "$DIR/munge"
    [ -s "$DIR/munge/munge.key" ] || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
    local mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / n - 512 ))
    local names="node[1-$n]"; [ "$n" = 1 ] && names=node1

    # the network: a bridge in the controller's namespace, a veth pair to each node's
    ip netns add "$CTL"
    in_ns "$CTL" ip link set lo up
    in_ns "$CTL" ip link add br0 type bridge
    in_ns "$CTL" ip addr add "$NET.1/24" dev br0
    in_ns "$CTL" ip link set br0 up
    local i
    for i in $(seq 1 "$n"); do
        ip netns add "$TAG-node$i"
        ip link add eth0 netns "$TAG-node$i" type veth peer name "v$i" netns "$CTL"
        in_ns "$CTL" ip link set "v$i" master br0 up
        in_ns "$TAG-node$i" ip link set lo up
        in_ns "$TAG-node$i" ip addr add "$NET.$((10 + i))/24" dev eth0
        in_ns "$TAG-node$i" ip link set eth0 up
    done

    {
        cat <<CONF
ClusterName=rsnet-local
SlurmctldHost=rsnet-ctl($NET.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK,cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/spool/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
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
CONF
        for i in $(seq 1 "$n"); do
            echo "NodeName=node$i NodeAddr=$NET.$((10 + i)) CPUs=$CPUS RealMemory=$mem State=UNKNOWN"
        done
        echo "PartitionName=debug Nodes=$names Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
    } > "$CONF"

    # Slurm's commands from outside the cluster enter the controller's namespace; inside a node
    # (a job's own srun and scontrol) they run as they are
    local cmd real path_without_ours
    path_without_ours=$(echo "$PATH" | tr ':' '\n' | grep -vxF "$DIR/bin" | paste -sd:)
    for cmd in sbatch srun salloc squeue scontrol scancel sinfo sacct sstat; do
        real=$(PATH=$path_without_ours command -v $cmd) || continue
        cat > "$DIR/bin/$cmd" <<WRAP
#!/bin/sh
case "\$(ip netns identify 2>/dev/null)" in
    $TAG-*) exec $real "\$@" ;;
    *) exec nsenter --net=/run/netns/$CTL $real "\$@" ;;
esac
WRAP
        chmod 755 "$DIR/bin/$cmd"
    done

    in_ns "$CTL" munged --socket="$SOCK" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munged.pid" \
        --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munge.seed" --force
    in_ns "$CTL" unshare --uts sh -c "hostname rsnet-ctl && SLURM_CONF=$CONF exec slurmctld -f $CONF -i"
    for i in $(seq 1 "$n"); do
        in_ns "$TAG-node$i" unshare --uts sh -c "hostname node$i && SLURM_CONF=$CONF exec slurmd -f $CONF -N node$i"
    done
    for i in $(seq 1 60); do
        if [ "$(PATH=$DIR/bin:$PATH SLURM_CONF=$CONF sinfo -h -N -o %t 2>/dev/null | grep -cE "idle|mix|alloc")" = "$n" ]; then
            echo "local_cluster: Slurm is up: $n node(s), node1..node$n at $NET.11..$NET.$((10 + n)), $CPUS CPUs each, under $DIR"
            env_lines; return
        fi
        sleep 1
    done
    echo "local_cluster: Slurm did not come up; logs in $DIR/log" >&2
    stop >/dev/null      # nothing of a failed start is left running
    exit 1
}

kill_namespace() {   # every process in the namespace, politely and then not
    local ns=$1 sig pids i
    for sig in TERM KILL; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -z "$pids" ] && return 0
        kill -$sig $pids 2>/dev/null || true
        for i in $(seq 1 20); do
            [ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ] && return 0
            sleep 0.5
        done
    done
}

stop() {
    # jobs still running are cancelled while the controller is there to do it
    if [ -f "$CONF" ] && [ -e "/run/netns/$CTL" ] && [ -n "$(ip netns pids "$CTL" 2>/dev/null)" ]; then
        PATH=$DIR/bin:$PATH SLURM_CONF=$CONF timeout 20 scancel --quiet --user "$(id -un)" 2>/dev/null || true
        for i in $(seq 1 20); do
            [ -z "$(PATH=$DIR/bin:$PATH SLURM_CONF=$CONF timeout 10 squeue -h -u "$(id -un)" 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    local ns
    for ns in $(node_namespaces) $CTL; do
        [ -e "/run/netns/$ns" ] || continue
        kill_namespace "$ns"
        ip netns del "$ns"
    done
    rm -f "$DIR"/*.pid
    echo "local_cluster: stopped"
}

node_ns() {   # the namespace of node NAME of this cluster
    [[ "${1:-}" =~ ^node[0-9]+$ ]] && [ -e "/run/netns/$TAG-$1" ] || {
        echo "local_cluster: no node '${1:-}' (nodes: $(node_namespaces | sed "s/^$TAG-//" | paste -sd' '))" >&2
        exit 2
    }
    echo "$TAG-$1"
}

crash_node() {   # as when the machine dies: slurmd, Ray, every process in the node's namespace
    local ns
    ns=$(node_ns "${1:-}")
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    echo "local_cluster: $1 crashed (its processes killed)"
}

restart_node() {   # its processes ended, slurmd again; Slurm returns it to service (ReturnToService=2)
    local ns
    ns=$(node_ns "${1:-}")
    kill_namespace "$ns"
    in_ns "$ns" unshare --uts sh -c "hostname $1 && SLURM_CONF=$CONF exec slurmd -f $CONF -N $1"
    local i
    for i in $(seq 1 120); do
        case "$(PATH=$DIR/bin:$PATH SLURM_CONF=$CONF sinfo -h -n "$1" -N -o %t 2>/dev/null)" in
            idle*|mix*|alloc*) echo "local_cluster: $1 is back"; return 0 ;;
        esac
        sleep 1
    done
    echo "local_cluster: $1 did not come back; see $DIR/log/slurmd-$1.log" >&2
    exit 1
}

status() {
    # sinfo retries an absent controller for about a minute: ask only when ours is running
    [ -e "/run/netns/$CTL" ] && [ -f "$CONF" ] && pgrep -F "$DIR/slurmctld.pid" slurmctld >/dev/null 2>&1 \
        || { echo "local_cluster: not running"; return 1; }
    PATH=$DIR/bin:$PATH SLURM_CONF=$CONF sinfo -h -N -o "%N %t %C" 2>/dev/null || { echo "local_cluster: not running"; return 1; }
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) stop ;;
    status) status ;;
    env) env_lines ;;
    crash-node) crash_node "${2:-}" ;;
    restart-node) restart_node "${2:-}" ;;
    *) echo "usage: $0 start [--nodes N] | stop | status | env | crash-node NODE | restart-node NODE" >&2; exit 2 ;;
esac
