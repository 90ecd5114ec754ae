"""The preprocessing cache: one store per (dataset, root, fps, resolution, channels,
preprocessing version, state of the source files).

A store is a directory holding
    frames.u8    every face crop of every usable video, uint8 (N, C, R, R), one contiguous
                 file read back memory-mapped (a UvA-NEMO-sized store opens in milliseconds)
    videos.csv   the adapter's table plus start/length into frames.u8, status and error
    meta.json    settings, fingerprint of the sources, counts, timing
It is built in a temporary directory and renamed into place (atomic); its name carries a
fingerprint of the sources (paths, sizes, mtimes), so a changed dataset gets a new store and
the old one is left alone. Several processes, on several nodes of a shared file system, may
ask for the same store at once: a file lock lets one build while the others wait, then all
read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from tqdm import tqdm

from ..atomic import atomic_path
from .adapters import is_native, list_videos
from .preprocess import PrepConfig, PreprocessError, preprocess_video

CHUNK = 8


def default_cache_root() -> Path:
    return Path(os.environ.get("RSNET_CACHE", "cache"))


def fingerprint(dataset: str, root, videos: pd.DataFrame, cfg: PrepConfig) -> str:
    """Hash of the settings and of every source file's path, size and mtime."""
    h = hashlib.sha256(json.dumps([dataset, str(Path(root).resolve()), cfg.to_dict()]).encode())
    for path in videos.path:
        p = Path(path)
        files = sorted(p.iterdir()) if p.is_dir() else [p]
        for f in files:
            st = f.stat()
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def store_name(dataset: str, cfg: PrepConfig, fp: str) -> str:
    rate = f"stride{cfg.stride}" if cfg.stride else f"fps{cfg.fps:g}"
    return f"{dataset}-{rate}-res{cfg.res}-c{cfg.channels}-{cfg.crop}-v{cfg.version}-{fp}"


class FrameCache:
    """A built store: `videos` (DataFrame), `frames` (memory-mapped uint8 (N, C, R, R))."""

    def __init__(self, path, built_now: bool = False):
        self.path = Path(path)
        self.built_now = built_now
        self.meta = json.loads((self.path / "meta.json").read_text())
        self.videos = pd.read_csv(
            self.path / "videos.csv",
            dtype={"subject": str, "id": str},
            keep_default_na=False,
            na_values={"age": [""], "fps": [""]},
        )
        shape = tuple(self.meta["shape"])
        self.frames = (
            np.memmap(self.path / "frames.u8", np.uint8, "r", shape=shape) if shape[0] else np.zeros(shape, np.uint8)
        )

    @property
    def usable(self) -> pd.DataFrame:
        return self.videos[self.videos.status == "ok"]

    def clip(self, i: int) -> np.ndarray:
        """Frames of row i of `videos`: (T, C, R, R) uint8."""
        r = self.videos.iloc[i]
        return self.frames[int(r.start) : int(r.start) + int(r.length)]


def process_chunk(rows: list[dict], cfg: PrepConfig, prefix: str) -> list[dict]:
    """Preprocess some videos into prefix.u8; one info dict per video, failures recorded."""
    infos = []
    with open(prefix + ".u8", "wb") as out:
        for row in rows:
            t0 = time.perf_counter()
            try:
                crops, info = preprocess_video(row["path"], row["kind"], row["fps"], cfg)
                out.write(np.ascontiguousarray(crops).tobytes())
                info.update(status="ok", error="", length=len(crops))
            except PreprocessError as e:
                info = {"status": "failed", "error": str(e), "length": 0}
            except Exception as e:  # a broken video must never take the others down
                info = {"status": "failed", "error": f"{row['path']}: {type(e).__name__}: {e}", "length": 0}
            info.update(id=row["id"], seconds=round(time.perf_counter() - t0, 3))
            infos.append(info)
    return infos


class LocalRunner:
    """Preprocesses chunks on this machine: `workers` processes (default every core), or in this
    process with one. Called like map(fn, *iterables): the results in order, as they come."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1

    def __call__(self, fn, *iterables):
        if self.workers == 1:
            yield from map(fn, *iterables)
            return
        with ProcessPoolExecutor(self.workers) as pool:
            yield from pool.map(fn, *iterables)


class SubmititRunner:
    """Preprocesses chunks as a submitit job array (logs in `folder`), at most `workers` tasks at
    once; `options`: submitit's (timeout_min, cpus_per_task, slurm_partition, ...)."""

    def __init__(self, folder, cluster: str = "slurm", workers: int = 64, **options):
        self.folder, self.cluster, self.workers = Path(folder), cluster, workers
        self.options = {**({"slurm_array_parallelism": workers} if cluster == "slurm" else {}), **options}

    def __call__(self, fn, *iterables):
        import submitit

        ex = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        ex.update_parameters(**self.options)
        jobs = ex.map_array(fn, *(list(it) for it in iterables))
        print(f"prepare: submitted {len(jobs)} array tasks ({self.cluster}), job {jobs[0].job_id}")
        for job in jobs:
            yield job.result()


def build_store(
    final: Path, *, dataset: str, root, videos: pd.DataFrame, cfg: PrepConfig, runner, progress: bool, fp: str
) -> None:
    """Preprocess every video into a new store at `final` (built beside it, then renamed)."""
    with atomic_path(final) as tmp:
        tmp.mkdir(parents=True)
        _build_into(tmp, dataset=dataset, root=root, videos=videos, cfg=cfg, runner=runner, progress=progress, fp=fp)


def _build_into(
    tmp: Path, *, dataset: str, root, videos: pd.DataFrame, cfg: PrepConfig, runner, progress: bool, fp: str
) -> None:
    t0 = time.perf_counter()
    records = videos.to_dict("records")
    size = max(1, min(CHUNK, -(-len(records) // (4 * runner.workers))))
    chunks = [records[i : i + size] for i in range(0, len(records), size)]
    prefixes = [str(tmp / f"part-{i:05d}") for i in range(len(chunks))]
    bar = tqdm(total=len(records), desc=f"prepare {dataset}", unit="video", disable=not progress)
    infos = []
    for chunk, done in zip(chunks, runner(process_chunk, chunks, [cfg] * len(chunks), prefixes)):
        infos += done
        bar.update(len(chunk))
    bar.close()
    with open(tmp / "frames.u8", "wb") as out:
        for prefix in prefixes:
            with open(prefix + ".u8", "rb") as part:
                shutil.copyfileobj(part, out, 1 << 24)
            os.remove(prefix + ".u8")
    table = videos.merge(pd.DataFrame(infos), on="id", how="left", validate="one_to_one")
    table["start"] = np.concatenate([[0], np.cumsum(table.length.to_numpy())[:-1]]).astype(np.int64)
    table.to_csv(tmp / "videos.csv", index=False)
    n = int(table.length.sum())
    failed = table[table.status != "ok"]
    meta = {
        "dataset": dataset,
        "root": str(Path(root).resolve()),
        "config": cfg.to_dict(),
        "fingerprint": fp,
        "shape": [n, cfg.channels, cfg.res, cfg.res],
        "videos": len(table),
        "failed": len(failed),
        "frames": n,
        "seconds": round(time.perf_counter() - t0, 2),
        "built_by": f"{os.uname().nodename}:{os.getpid()}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "synthetic": (Path(root) / "SYNTHETIC.json").exists(),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))


def load_or_build(
    dataset: str, root, cfg: PrepConfig = PrepConfig(), cache_root=None, *, runner=None, progress=True, **adapter_kw
) -> FrameCache:
    """The store for (dataset, root, cfg), built if missing or if the sources changed, by `runner`
    (LocalRunner or SubmititRunner; default LocalRunner(): every core); `adapter_kw`: the
    dataset adapter's options (rsnet.data.adapters.adapter_options)."""
    videos = list_videos(dataset, root, **adapter_kw)
    fp = fingerprint(dataset, root, videos, cfg)
    cache_root = Path(cache_root) if cache_root else default_cache_root()
    cache_root.mkdir(parents=True, exist_ok=True)
    final = cache_root / store_name(dataset, cfg, fp)
    if final.is_dir():
        return FrameCache(final, built_now=False)
    lock = FileLock(str(final) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            print(f"prepare: waiting for another process building {final}")
        lock.acquire()
    try:
        built = not final.is_dir()
        if built:
            kw = {"dataset": dataset, "root": root, "videos": videos, "cfg": cfg, "progress": progress, "fp": fp}
            build_store(final, runner=runner or LocalRunner(), **kw)
    finally:
        lock.release()
    cache = FrameCache(final, built_now=built)
    if not is_native(dataset):  # a CSV's labels, subjects and folds as they are now, not as when the frames were cut
        now = videos.set_index("id")
        for column in ("label", "subject", "gender", "age", "age_group", "fold"):
            if column in now:
                cache.videos[column] = cache.videos.id.map(now[column])
    return cache
