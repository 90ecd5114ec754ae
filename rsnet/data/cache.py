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
from .adapters import list_videos
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


def _run_chunks(chunks, cfg, prefixes, workers, submitit_cluster, submitit_options, progress, desc):
    bar = tqdm(total=sum(len(c) for c in chunks), desc=desc, unit="video", disable=not progress)
    results = []
    if submitit_cluster:
        import submitit

        ex = submitit.AutoExecutor(folder=Path(prefixes[0]).parent / "submitit", cluster=submitit_cluster)
        ex.update_parameters(**(submitit_options or {}))
        jobs = ex.map_array(process_chunk, chunks, [cfg] * len(chunks), prefixes)
        print(f"prepare: submitted {len(jobs)} array tasks ({submitit_cluster}), job {jobs[0].job_id}")
        for job, chunk in zip(jobs, chunks):
            results.append(job.result())
            bar.update(len(chunk))
    elif workers == 1:
        for args in zip(chunks, [cfg] * len(chunks), prefixes):
            results.append(process_chunk(*args))
            bar.update(len(args[0]))
    else:
        with ProcessPoolExecutor(workers) as pool:
            for chunk, res in zip(chunks, pool.map(process_chunk, chunks, [cfg] * len(chunks), prefixes)):
                results.append(res)
                bar.update(len(chunk))
    bar.close()
    return results


def build_store(
    dataset,
    root,
    videos,
    cfg,
    final: Path,
    workers=None,
    submitit_cluster=None,
    submitit_options=None,
    progress=True,
    fp="",
) -> None:
    with atomic_path(final) as tmp:
        tmp.mkdir(parents=True)
        _build_into(tmp, dataset, root, videos, cfg, workers, submitit_cluster, submitit_options, progress, fp)


def _build_into(
    tmp: Path, dataset, root, videos, cfg, workers, submitit_cluster, submitit_options, progress, fp
) -> None:
    t0 = time.perf_counter()
    records = videos.to_dict("records")
    workers = workers or os.cpu_count() or 1
    size = max(1, min(CHUNK, -(-len(records) // (4 * workers))))
    chunks = [records[i : i + size] for i in range(0, len(records), size)]
    prefixes = [str(tmp / f"part-{i:05d}") for i in range(len(chunks))]
    results = _run_chunks(
        chunks, cfg, prefixes, workers, submitit_cluster, submitit_options, progress, f"prepare {dataset}"
    )
    infos = [info for chunk in results for info in chunk]
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
    dataset: str,
    root,
    cfg: PrepConfig = PrepConfig(),
    cache_root=None,
    workers=None,
    submitit_cluster=None,
    submitit_options=None,
    progress=True,
    **adapter_kw,
) -> FrameCache:
    """The store for (dataset, root, cfg), built if missing or if the sources changed."""
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
        if not final.is_dir():
            build_store(dataset, root, videos, cfg, final, workers, submitit_cluster, submitit_options, progress, fp)
            built = True
        else:
            built = False
    finally:
        lock.release()
    return FrameCache(final, built_now=built)
