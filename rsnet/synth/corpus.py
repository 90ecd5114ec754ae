"""Generate a whole corpus in parallel, resumably, and record what was generated."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..atomic import write_json_atomic
from .layouts import plan_corpus
from .render import ClipRenderer, ClipSpec, write_clip

SYNTHETIC_MANIFEST = "SYNTHETIC.json"


def _make(args: tuple[ClipSpec, str]) -> tuple[str, dict]:
    spec, root = args
    dest = Path(root) / spec.relpath
    truth = ClipRenderer(spec).truth() if dest.exists() else write_clip(spec, Path(root))
    return spec.relpath, truth


def generate_corpus(
    dataset: str,
    size: str,
    out,
    seed: int = 0,
    frame_size=None,
    design: str = "order",
    difficulty: float | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Write a synthetic `dataset` corpus of `size` under `out`; returns a summary.

    Clips already present (each is written atomically) are kept and not rendered again, so an
    interrupted run resumes; nothing is deleted. `SYNTHETIC.json` in the root records the
    generator's settings and each clip's hidden truth (dynamics, class drawn from)."""
    kw = {"design": design}
    if difficulty is not None:
        kw["difficulty"] = difficulty
    plan = plan_corpus(dataset, size, seed, frame_size, **kw)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    settings = {
        "generator": "rsnet.synth",
        "version": __version__,
        "dataset": dataset,
        "size": size,
        "seed": seed,
        "design": design,
        "difficulty": plan.specs[0].difficulty,
        "frame_size": [plan.specs[0].width, plan.specs[0].height],
    }
    done = _complete(root, settings, plan.specs)
    if done is not None:  # every clip is there, made with these settings
        plan.write_metadata(root, plan.specs)
        return _summary(dataset, size, done, t0, root)
    workers = workers or os.cpu_count() or 1
    jobs = [(s, str(root)) for s in plan.specs]
    truths: dict[str, dict] = {}
    bar = tqdm(total=len(jobs), desc=f"synth {dataset}/{size}", unit="clip", disable=not progress)
    if workers == 1:
        results = map(_make, jobs)
    else:
        pool = ProcessPoolExecutor(workers)
        results = pool.map(_make, jobs, chunksize=1)
    for rel, truth in results:
        truths[rel] = truth
        bar.update()
    bar.close()
    if workers != 1:
        pool.shutdown()
    plan.write_metadata(root, plan.specs)
    manifest = {**settings, "clips": dict(sorted(truths.items()))}
    write_json_atomic(root / SYNTHETIC_MANIFEST, manifest)
    return _summary(dataset, size, truths, t0, root)


def _complete(root: Path, settings: dict, specs: list[ClipSpec]) -> dict | None:
    """The recorded truths when SYNTHETIC.json holds these settings and every planned clip
    exists (a rerun, e.g. each sweep of a synthetic corpus, then renders nothing); else None."""
    try:
        manifest = json.loads((root / SYNTHETIC_MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    clips = manifest.pop("clips", {})
    if manifest != settings or set(clips) != {s.relpath for s in specs}:
        return None
    return clips if all((root / s.relpath).exists() for s in specs) else None


def _summary(dataset: str, size: str, truths: dict, t0: float, root: Path) -> dict:
    return {
        "dataset": dataset,
        "size": size,
        "clips": len(truths),
        "frames": sum(t["frames"] for t in truths.values()),
        "seconds": time.perf_counter() - t0,
        "root": str(root),
    }
