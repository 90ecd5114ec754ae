"""`python -m rsnet.sweep FILE --slurm [...]`: submit slurm/launch_ray.sh through submitit.

The same launcher as `sbatch slurm/launch_ray.sh FILE`: submitit only adds the cluster
options (partition, nodes, GPUs, time, CPUs) and requeues the job if Slurm preempts it or its
time runs out (the sweep then resumes). Every other option of the sweep command is passed
through (`forwarded`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import submitit

LAUNCHER = Path(__file__).resolve().parent / "sweep" / "launch_ray.sh"  # slurm/launch_ray.sh in a checkout


class LaunchRay(submitit.helpers.Checkpointable):
    """Runs the launcher in the job; Checkpointable: on timeout or preemption submitit
    resubmits it, and the sweep resumes where it stopped."""

    def __init__(self, sweep_file: str, args: list[str]):
        self.sweep_file, self.args = sweep_file, args

    def __call__(self) -> int:
        subprocess.run(["bash", str(LAUNCHER), self.sweep_file, *self.args], check=True)
        return 0


def forwarded(a: argparse.Namespace) -> list[str]:
    """The sweep command's own options for the job's sweep command: every option of its parser
    whose value is not its default, except the sweep file and --grid (the launcher's first
    argument), --address (the job's Ray is the launcher's) and the Slurm group's. Checked by
    parsing them back."""
    from .sweep.__main__ import parser

    ap = parser()
    skip = {"file", "grid", "address", *ap.slurm_options}
    out = []
    for action in ap._actions:  # argparse's list of the parser's options, in their order
        if action.dest in skip or not action.option_strings or action.dest not in vars(a):
            continue
        value = getattr(a, action.dest)
        if value == action.default:
            continue
        flag = action.option_strings[0]
        if action.nargs == 0:  # a switch: --x, or --x / --no-x
            out.append(flag if value else next(s for s in action.option_strings if s.startswith("--no-")))
        else:
            out += [flag, *map(str, value)] if isinstance(value, list) else [flag, str(value)]
    back = vars(ap.parse_args(["sweep.yaml", *out]))
    if lost := sorted(k for k, v in vars(a).items() if k not in skip and back[k] != v):
        raise RuntimeError(f"--slurm would not forward {', '.join(lost)}")
    return out


def submit_sweep(sweep, a) -> int:
    """Submit the sweep file with the parsed sweep options `a` (see rsnet.sweep.__main__)."""
    results = Path(a.results).resolve()
    logs = results / sweep.name / "slurm-logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        "RSNET_RESULTS": results,
        "RSNET_DATA": Path(a.data_root).resolve(),
        "RSNET_CACHE": Path(a.cache or os.environ.get("RSNET_CACHE", "cache")).resolve(),
    }
    ex = submitit.AutoExecutor(folder=logs, cluster="slurm")
    params = {
        "name": f"rsnet-{sweep.name}",
        "nodes": a.nodes,
        "tasks_per_node": 1,
        "cpus_per_task": a.cpus_per_task,
        "timeout_min": a.time,
        "slurm_setup": [f"export {k}={v}" for k, v in env.items()],
    }
    if a.gpus_per_node:
        params["gpus_per_node"] = a.gpus_per_node
    if a.partition:
        params["slurm_partition"] = a.partition
    ex.update_parameters(**params)
    job = ex.submit(LaunchRay(str(Path(sweep.path).resolve()), forwarded(a)))
    print(
        f"sweep {sweep.name}: submitted job {job.job_id} (slurm); results -> {results / sweep.name}; "
        f"logs -> {logs}/{job.job_id}_0_log.out"
    )
    if not a.wait:
        return 0
    try:
        job.result()
    except Exception as e:  # the job's own error, as submitit reports it
        print(f"sweep {sweep.name}: job {job.job_id} failed: {e}")
        return 1
    print(f"sweep {sweep.name}: job {job.job_id} finished; table -> {results / sweep.name / 'trials.csv'}")
    return 0
