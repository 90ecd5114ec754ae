"""python -m rsnet.prepare --dataset NAME --root DIR [--fps 5 --res 48 --channels 3 --cache DIR]

Builds (or finds) the preprocessing cache of a dataset: frames sampled by time, faces found
with dlib, cropped and resized, stored as uint8. Prints a summary line and every failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .data import ADAPTERS, DatasetError, PrepConfig, load_or_build
from .data.adapters import adapter_options
from .data.cache import LocalRunner, SubmititRunner, default_cache_root
from .data.preprocess import CROPS


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rsnet.prepare", description=__doc__.split("\n\n")[1])
    ap.add_argument(
        "--dataset",
        required=True,
        help=f"{', '.join(ADAPTERS)}, an installed adapter's name, or any name whose --root holds a manifest.csv",
    )
    ap.add_argument("--root", required=True, help="the dataset's root folder, as its owners ship it")
    ap.add_argument("--fps", type=float, default=5.0, help="frames sampled per second of video (default 5)")
    ap.add_argument("--res", type=int, default=48, help="face crop side in pixels (default 48)")
    ap.add_argument("--channels", type=int, choices=(1, 3), default=3, help="3 colour, 1 gray")
    ap.add_argument(
        "--crop",
        choices=CROPS,
        default="aligned",
        help="aligned: face chips placed by the eye landmarks (default) | box: detector box",
    )
    ap.add_argument("--cache", default=None, help="cache root (default $RSNET_CACHE or ./cache)")
    ap.add_argument("--workers", type=int, default=None, help="local processes (default: every core)")
    ap.add_argument("--selection", default=None, help="MMI only: the selection CSV (session,label,subject)")
    ap.add_argument("--slurm", action="store_true", help="run as a submitit job array on Slurm")
    ap.add_argument("--partition", default=None, help="with --slurm: the partition")
    ap.add_argument("--time", type=int, default=60, help="with --slurm: minutes per array task")
    ap.add_argument("--cpus-per-task", type=int, default=2, help="with --slurm: CPUs per array task")
    return ap


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    cfg = PrepConfig(fps=a.fps, res=a.res, channels=a.channels, crop=a.crop)
    kw = adapter_options(a.dataset, a.selection)
    runner = LocalRunner(a.workers)
    if a.slurm:
        options = {"timeout_min": a.time, "cpus_per_task": a.cpus_per_task}
        if a.partition:
            options["slurm_partition"] = a.partition
        runner = SubmititRunner(Path(a.cache or default_cache_root()) / "submitit", **options)
    try:
        cache = load_or_build(a.dataset, a.root, cfg, a.cache, runner=runner, **kw)
    except DatasetError as e:
        print(f"prepare: error: {e}", file=sys.stderr)
        return 2
    m, v = cache.meta, cache.videos
    for r in v[v.status != "ok"].itertuples():
        print(f"prepare: skipped {r.id}: {r.error}")
    how = f"built in {m['seconds']:.1f} s" if cache.built_now else "reused"
    print(
        f"prepare: {m['dataset']}: {m['videos']} videos, {m['frames']} frames, {m['failed']} failures, "
        f"{how} -> {cache.path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
