#!/bin/bash
# Run an rsnet sweep on a Ray cluster that spans this Slurm allocation.
#
#   sbatch slurm/launch_ray.sh sweeps/ablations.yaml [python -m rsnet.sweep options]
#   sbatch --nodes=4 --gpus-per-node=4 --time=2-00:00:00 slurm/launch_ray.sh sweeps/benchmark.yaml
#
# Edit the #SBATCH lines below or override them on the sbatch command line. Results and caches
# go to a path every node sees (Ray Tune no longer syncs trial results to the head):
#   RSNET_RESULTS (default <submit dir>/results), RSNET_CACHE (<submit dir>/cache),
#   RSNET_DATA (<submit dir>/data: the datasets as <data>/<dataset>/), RSNET_PYTHON (the
#   interpreter; default <submit dir>/.venv/bin/python if present, else python3).
#
# Losses cost what they must and no more: a node that fails does not end the job (--no-kill): its
# trials are retried from their checkpoints on the others; a requeued job may start on fewer nodes
# (sbatch --nodes=MIN-MAX; no --ntasks-per-node here, which would make Slurm give MIN). When the
# job is sent SIGTERM (preemption, an admin, `scancel --signal=TERM --full`) or the head's Ray is
# lost (its `ray start --block` step exits: the driver, left without Ray, is stopped), it requeues
# itself, as before its time limit; the rerun resumes the sweep. Each node's Ray writes to
# $SUBMIT_DIR/.rsnet/ray-<job>-<node>.log.
#
# Pattern: Ray's documented Slurm recipe, a head plus one worker per further node, each started
# with `srun ... ray start --block`. We start the nodes ourselves rather than with
# `ray symmetric-run` (Ray >= 2.49) because that lets every port, the temp dir and the node
# address be chosen per job, and lets this job stop exactly its own Ray processes: the srun
# steps are signalled at the end and `ray start --block` takes its node down. No bare
# `ray stop`, which would kill every Ray of the user on the node.
#
#SBATCH --job-name=rsnet-sweep
#SBATCH --nodes=1
#SBATCH --cpus-per-task=8
#SBATCH --time=1-00:00:00
#SBATCH --output=rsnet-%x-%j.out
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --no-kill
#SBATCH --signal=B:USR1@300
set -euo pipefail
SWEEP=${1:?usage: sbatch slurm/launch_ray.sh SWEEP.yaml [python -m rsnet.sweep options]}
shift
# under submitit every task runs this script: only the first one drives the job
[ "${SLURM_PROCID:-0}" = 0 ] || exit 0
SUBMIT_DIR=${SLURM_SUBMIT_DIR:-$PWD}
cd "$SUBMIT_DIR"
JOB=${SLURM_JOB_ID:?run this through sbatch (or slurm/local_cluster.sh for a local Slurm)}
if [ -z "${RSNET_PYTHON:-}" ]; then
    if [ -x "$SUBMIT_DIR/.venv/bin/python" ]; then RSNET_PYTHON=$SUBMIT_DIR/.venv/bin/python; else RSNET_PYTHON=python3; fi
fi
RAY="$(dirname "$RSNET_PYTHON")/ray"
[ -x "$RAY" ] || RAY=ray
export RSNET_RESULTS=${RSNET_RESULTS:-$SUBMIT_DIR/results}
export RSNET_CACHE=${RSNET_CACHE:-$SUBMIT_DIR/cache}
export RSNET_DATA=${RSNET_DATA:-$SUBMIT_DIR/data}
export RAY_USAGE_STATS_ENABLED=0

# Ports: a block of 100 per job, derived from the job id, so jobs sharing a node do not meet.
BASE=$(( 20000 + (JOB % 400) * 100 ))
PORTS=(--node-manager-port=$((BASE + 1)) --object-manager-port=$((BASE + 2))
       --runtime-env-agent-port=$((BASE + 3)) --dashboard-agent-grpc-port=$((BASE + 4))
       --dashboard-agent-listen-port=$((BASE + 5)) --metrics-export-port=$((BASE + 6))
       --min-worker-port=$((BASE + 10)) --max-worker-port=$((BASE + 99)))
# A short per-job temp dir (a folder per node in it): Ray's unix socket paths must stay under 107 bytes.
TMP_DIR=/tmp/rsnet-$JOB
LOGS=$SUBMIT_DIR/.rsnet  # each node's `ray start` output (Ray's own signal traces stay out of the job log)
node_log() { echo "$LOGS/ray-$JOB-$1.log"; }
# Security: the dashboard and job API run code for whoever reaches them: both off. Token auth
# with a per-job token only this user can read (on the shared submit dir so every node sees it):
# a client without it is refused. Each node's Ray advertises the node's address; its agents and
# client server listen there, but Ray 2.60 binds its gRPC servers (GCS, raylet, object manager,
# workers) on every interface, with no option to narrow them: the token is what guards those.
mkdir -p "$SUBMIT_DIR/.rsnet" && chmod 700 "$SUBMIT_DIR/.rsnet"
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$SUBMIT_DIR/.rsnet/ray-token-$JOB
( umask 077; [ -s "$RAY_AUTH_TOKEN_PATH" ] || "$RSNET_PYTHON" -c "import secrets; print(secrets.token_hex(32))" > "$RAY_AUTH_TOKEN_PATH" )

NODES=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
HEAD=${NODES[0]}
# Each node's address from `hostname -I` on it (`hostname --ip-address` gives 127.0.0.1 on some
# systems); RSNET_NODE_IP overrides it (say, to pick the interface of a fast network).
ip_of() { srun --overlap --nodes=1 --ntasks=1 -w "$1" bash -c 'echo ${RSNET_NODE_IP:-$(hostname -I | cut -d" " -f1)}'; }
declare -A IP STEP
for node in "${NODES[@]}"; do IP[$node]=$(ip_of "$node"); done
ADDRESS=${IP[$HEAD]}:$BASE
CPUS=${SLURM_CPUS_PER_TASK:-$(nproc)}
# GPUs as Slurm grants them
GPUS=${SLURM_GPUS_ON_NODE:-0}
if [ "$GPUS" = 0 ] && [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then GPUS=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c .); fi

STEPS=()
# the sweep's driver stopped: SIGINT, or SIGTERM when the job was sent it (the driver stops its
# trials, saves the sweep's state and says which signal), SIGKILL if it has not ended within $1
# seconds, or 5 s after the head's Ray is gone (a SIGTERM to the whole job reaches the Ray steps
# too): a driver without its Ray waits on it, unable to stop
STOP_SIGNAL=INT
stop_driver() {
    [ -n "${DRIVER:-}" ] && kill -"$STOP_SIGNAL" "$DRIVER" 2>/dev/null || return 0
    local deadline=$((SECONDS + $1))
    while kill -0 "$DRIVER" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
        kill -0 "${STEP[$HEAD]}" 2>/dev/null || deadline=$((deadline < SECONDS + 5 ? deadline : SECONDS + 5))
        sleep 1
    done
    kill -KILL "$DRIVER" 2>/dev/null || true
    wait "$DRIVER" 2>/dev/null || true
    DRIVER=
}
cleanup() {
    trap - EXIT TERM INT
    stop_driver 60
    for pid in "${STEPS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${STEPS[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "launch_ray: job $JOB stopped its Ray ($TMP_DIR on ${#NODES[@]} node(s))"
}
trap cleanup EXIT
requeue() {   # $1: why. The rerun resumes the sweep; a job being cancelled is not requeued
    if scontrol requeue "$JOB" 2>/dev/null; then
        echo "launch_ray: job $JOB: $1: requeued; the sweep resumes where it stopped when the job restarts"
    else
        echo "launch_ray: job $JOB: $1: not requeued (cancelled?); the same sbatch resumes the sweep"
    fi
}
on_warning() {   # time limit or preemption coming
    requeue "the warning signal before the time limit"
    cleanup
    exit 0
}
on_term() {   # preemption, an admin, scancel --signal=TERM: stop the sweep (one line), then requeue
    trap - TERM
    STOP_SIGNAL=TERM   # the driver may have it already (scancel --full): one signal, one name
    cleanup   # the driver first (it saves the sweep's state), then this job's Ray
    requeue "SIGTERM"
    exit 0
}
trap on_warning USR1
trap on_term TERM
trap cleanup INT

# the nodes' addresses Ray lists as alive (a driver that connects and leaves)
alive_ips() {
    "$RSNET_PYTHON" -c 'import sys, ray; ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(" ".join(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]))' "$ADDRESS" 2>/dev/null || true
}
# every node's Ray is up within RSNET_RAY_START_TIMEOUT seconds, or the job fails naming the node
await_nodes() {
    local deadline=$((SECONDS + ${RSNET_RAY_START_TIMEOUT:-120})) node alive missing
    while :; do
        for node in "$@"; do
            kill -0 "${STEP[$node]}" 2>/dev/null || {
                echo "launch_ray: Ray did not start on node $node (${IP[$node]}): its 'ray start' exited; the end of $(node_log "$node"):" >&2
                tail -n 20 "$(node_log "$node")" >&2
                exit 1
            }
        done
        alive=" $(alive_ips) " missing=()
        for node in "$@"; do [[ "$alive" == *" ${IP[$node]} "* ]] || missing+=("$node (${IP[$node]})"); done
        [ ${#missing[@]} = 0 ] && return 0
        if [ $SECONDS -ge $deadline ]; then
            echo "launch_ray: Ray did not start on node(s) ${missing[*]} within ${RSNET_RAY_START_TIMEOUT:-120} s" >&2
            exit 1
        fi
        sleep 2
    done
}

echo "launch_ray: job $JOB, ${#NODES[@]} node(s), head $HEAD ($ADDRESS), $CPUS CPUs and $GPUS GPUs per node"
echo "launch_ray: results $RSNET_RESULTS, cache $RSNET_CACHE, data $RSNET_DATA"
srun --overlap --nodes=1 --ntasks=1 -w "$HEAD" "$RAY" start --head --block \
    --node-ip-address="${IP[$HEAD]}" --port="$BASE" --temp-dir="$TMP_DIR/$HEAD" --include-dashboard=false \
    --ray-client-server-port=$((BASE + 7)) --num-cpus="$CPUS" --num-gpus="$GPUS" "${PORTS[@]}" \
    >> "$(node_log "$HEAD")" 2>&1 &
STEP[$HEAD]=$!
STEPS+=($!)
await_nodes "$HEAD"
for node in "${NODES[@]:1}"; do
    srun --overlap --nodes=1 --ntasks=1 -w "$node" "$RAY" start --block --address="$ADDRESS" \
        --node-ip-address="${IP[$node]}" --temp-dir="$TMP_DIR/$node" --num-cpus="$CPUS" --num-gpus="$GPUS" "${PORTS[@]}" \
        >> "$(node_log "$node")" 2>&1 &
    STEP[$node]=$!
    STEPS+=($!)
done
await_nodes "${NODES[@]}"
echo "launch_ray: Ray is up on ${#NODES[@]} node(s): $(for n in "${NODES[@]}"; do printf '%s ' "$n=${IP[$n]}"; done)"

"$RSNET_PYTHON" -m rsnet.sweep "$SWEEP" --address "$ADDRESS" --results "$RSNET_RESULTS" \
    --cache "$RSNET_CACHE" --data-root "$RSNET_DATA" "$@" &
DRIVER=$!
set +e
# the driver runs while the head's Ray does: when the head's `ray start --block` exits (its raylet
# or GCS died), the driver, left without a Ray, would wait for it forever
while kill -0 "$DRIVER" 2>/dev/null && kill -0 "${STEP[$HEAD]}" 2>/dev/null; do
    sleep 2 & wait $!   # (a signal's trap runs at once)
done
if kill -0 "$DRIVER" 2>/dev/null; then
    stop_driver 0
    STATUS=1
else
    wait "$DRIVER"
    STATUS=$?
    DRIVER=
fi
# the sweep ended for a reason not its own: the head's Ray is gone (its step exited, or it answers no more)
if [ $STATUS != 0 ] && { ! kill -0 "${STEP[$HEAD]}" 2>/dev/null || [ -z "$(alive_ips)" ]; }; then
    cleanup
    requeue "the head's Ray ($HEAD) was lost"
    exit 0
fi
exit $STATUS
