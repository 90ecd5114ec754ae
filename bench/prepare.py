"""Preprocessing throughput: this pipeline against the authors' approach, on 1080p video.

    python bench/prepare.py [--videos 6 --authors-videos 2 --out /tmp/rsnet-bench-prepare]

Generates synthetic UvA-NEMO-like clips at 1920x1080, 50 fps (kept in --out for reruns), then
  ours:    decode only the frames sampled at 5 fps, dlib at <= 540 px width (a dlib pyramid level),
           eye landmarks (the aligned crop; also timed with the detector's box alone), crop, resize
  authors: decode every frame, dlib on every full-resolution frame (their preprocessing)
both in one process on one core, then ours as it runs by default (a process per core) against
the authors' single process. Prints videos/s of each, the speed-ups, the IoU of our crop
squares against crop squares from full-resolution detection on the same sampled frames, and
how long opening a UvA-NEMO-sized cache takes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def square(cx, cy, side):
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def authors(path: str) -> int:
    """Decode every frame; dlib's detector on each full-resolution frame."""
    import decord
    import dlib

    det = dlib.get_frontal_face_detector()
    vr = decord.VideoReader(path, num_threads=1)
    found = 0
    for i in range(len(vr)):
        gray = vr[i].asnumpy().mean(axis=2).astype(np.uint8)
        found += len(det(gray, 0)) > 0
    return found


def warm_worker(_) -> None:
    """Loads dlib's detector in a pool worker before the timing starts."""
    from rsnet.data.faces import face_detector

    face_detector()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--authors-videos", type=int, default=2)
    ap.add_argument("--out", default="/tmp/rsnet-bench-prepare")
    a = ap.parse_args()

    from rsnet.data.box import track_boxes
    from rsnet.data.cache import FrameCache
    from rsnet.data.faces import detect_faces
    from rsnet.data.preprocess import PrepConfig, read_sampled_frames
    from rsnet.synth.layouts import plan_corpus
    from rsnet.synth.render import write_clip

    root = Path(a.out) / "uvanemo-1080p"
    specs = plan_corpus("uvanemo", "tiny", seed=0, frame_size=(1920, 1080)).specs[: a.videos]
    t0 = time.perf_counter()
    for s in specs:
        if not (root / s.relpath).exists():
            write_clip(s, root)
    paths = [str(root / s.relpath) for s in specs]
    print(f"corpus: {len(paths)} clips at 1920x1080, 50 fps, ready in {time.perf_counter() - t0:.1f} s")

    cfg = PrepConfig()
    from concurrent.futures import ProcessPoolExecutor

    from rsnet.data.faces import face_detector
    from rsnet.data.preprocess import preprocess_video

    face_detector()  # warm-up, not timed
    preprocess_video(paths[0], "video", 50.0, cfg)  # and the landmark model's loading
    per_crop = {}
    for crop in ("box", "aligned"):  # the default (aligned) last: its figures are "ours"
        t0 = time.perf_counter()
        ours_frames = 0
        for p in paths:
            crops, info = preprocess_video(p, "video", 50.0, PrepConfig(crop=crop))
            ours_frames += len(crops)
        per_crop[crop] = len(paths) / (time.perf_counter() - t0)
    ours = per_crop["aligned"]

    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(warm_worker, range(workers)))  # start and warm the workers
        t0 = time.perf_counter()
        list(pool.map(preprocess_video, paths, ["video"] * len(paths), [50.0] * len(paths), [cfg] * len(paths)))
        ours_all = len(paths) / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for p in paths[: a.authors_videos]:
        authors(p)
    theirs = a.authors_videos / (time.perf_counter() - t0)

    ious = []
    for p in paths:
        frames, _, _ = read_sampled_frames(p, "video", 50.0, cfg.fps)
        track = track_boxes(detect_faces(frames, cfg.detect_width), cfg.smooth)
        full = detect_faces(frames, detect_width=10_000)  # full resolution
        for (cx, cy, side), box in zip(track, full):
            if box is not None:
                left, top, right, bottom = box
                ref = square((left + right) / 2, (top + bottom) / 2, max(right - left, bottom - top))
                ious.append(iou(square(cx, cy, side), ref))

    # opening a UvA-NEMO-sized store: 1240 videos x ~40 frames at 5 fps, 3x48x48
    store = Path(a.out) / "uvanemo-sized-store"
    n = 1240 * 40
    if not store.exists():
        store.mkdir(parents=True)
        with open(store / "frames.u8", "wb") as f:
            f.truncate(n * 3 * 48 * 48)
        import pandas as pd

        pd.DataFrame(
            {
                "id": [f"v{i}" for i in range(1240)],
                "status": "ok",
                "start": np.arange(1240) * 40,
                "length": 40,
                "subject": "001",
            }
        ).to_csv(store / "videos.csv", index=False)
        (store / "meta.json").write_text(json.dumps({"shape": [n, 3, 48, 48]}))
    t0 = time.perf_counter()
    c = FrameCache(store)
    _ = c.frames[-1].sum()
    open_s = time.perf_counter() - t0

    print(f"ours:    {ours:.3f} videos/s ({ours_frames / len(paths):.0f} frames per video kept)")
    print(f"authors: {theirs:.4f} videos/s (every frame decoded, dlib at 1920x1080)")
    print(f"speed-up, one core each: {ours / theirs:.1f}x (target >= 20x)")
    print(
        f"the aligned crop (default) against the detector's box: {per_crop['aligned']:.3f} against "
        f"{per_crop['box']:.3f} videos/s on one core, {per_crop['aligned'] / per_crop['box'] - 1:+.1%} throughput"
    )
    print(f"ours on all {workers} cores: {ours_all:.3f} videos/s, {ours_all / theirs:.1f}x the authors' single process")
    print(
        f"crop IoU vs full-resolution detection: mean {np.mean(ious):.3f}, min {np.min(ious):.3f} "
        f"over {len(ious)} frames (target mean >= 0.9)"
    )
    print(f"opening a UvA-NEMO-sized cache ({n} frames, {n * 3 * 48 * 48 / 2**20:.0f} MiB): {open_s * 1000:.1f} ms")


if __name__ == "__main__":
    main()
