"""Prediction speed on one CPU core: a 10 s 1080p 50 fps clip end to end, and the model alone.

    python bench/predict.py [--seconds 10 --repeats 3 --out /tmp/rsnet-bench-predict]

Renders a synthetic 1920x1080, 50 fps clip of --seconds (kept in --out for reruns), then, with
torch and every library on one thread, times `rsnet.predict.predict_one` (decode the frames
sampled at 5 fps, find the face, crop, score) and the model's forward pass alone on the same
crops. Prints each as seconds and as a multiple of real time (clip duration / seconds spent),
and, as the floor under any exact sampling, FFmpeg's H.264 decoder run over every frame.
Targets: end to end >= 10x real time, model alone >= 500x.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def make_clip(out: Path, seconds: float) -> Path:
    from rsnet.synth.layouts import plan_corpus
    from rsnet.synth.render import ClipRenderer, write_video

    path = out / f"smile-1080p-{seconds:g}s.mp4"
    if path.exists():
        return path
    out.mkdir(parents=True, exist_ok=True)
    spec = plan_corpus("uvanemo", "tiny", seed=0, frame_size=(1920, 1080)).specs[0]
    r = ClipRenderer(spec)
    n = round(seconds * spec.fps)
    # the smile plays back and forth until the clip is long enough
    order = [i % (2 * r.n_frames) for i in range(n)]
    order = [i if i < r.n_frames else 2 * r.n_frames - 1 - i for i in order]
    tmp = path.with_name(".tmp-" + path.name)
    write_video(tmp, (r.frame(i) for i in order), spec.fps, spec.width, spec.height)
    os.replace(tmp, path)
    return path


def decode_everything(path: Path) -> int:
    """Every frame through the decoder, nothing else: the floor under any exact frame sampling."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_count = 1
        return sum(1 for _ in c.decode(stream))


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="/tmp/rsnet-bench-predict")
    a = ap.parse_args()

    import torch

    from rsnet.config import TrialConfig
    from rsnet.data.faces import face_detector
    from rsnet.data.preprocess import preprocess_video
    from rsnet.predict import predict_one, score_clip

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    clip = make_clip(Path(a.out), a.seconds)
    print(f"clip: {clip} ({a.seconds:g} s, 1920x1080, 50 fps), ready in {time.perf_counter() - t0:.1f} s")
    cfg = TrialConfig()  # the paper's input: 5 fps, 48 px, colour
    model = cfg.model().eval()
    face_detector()  # loading dlib's model is not per-video work
    predict_one(model, cfg, clip, "video")  # warm-up
    results = []
    end_to_end = best_of(lambda: results.append(predict_one(model, cfg, clip, "video")), a.repeats)
    r = results[-1]
    crops, _ = preprocess_video(str(clip), "video", 50.0, cfg.prep())
    model_only = best_of(lambda: score_clip(model, crops), max(a.repeats, 20))
    print(
        f"end to end: {end_to_end:.3f} s = {a.seconds / end_to_end:.1f}x real time "
        f"(decode {r['decode_seconds']:.3f} s, face {r['face_seconds']:.3f} s, model {r['model_seconds']:.4f} s; "
        f"{r['frames']} frames at {cfg.fps:g} fps)  target >= 10x"
    )
    print(
        f"model alone: {model_only * 1000:.1f} ms for {len(crops)} frames = {a.seconds / model_only:.0f}x real time"
        f"  target >= 500x"
    )
    floor = best_of(lambda: decode_everything(clip), 1)
    print(
        f"decoding floor: FFmpeg's H.264 decoder alone (PyAV, 1 thread, no colour conversion) takes "
        f"{floor:.3f} s for all {round(a.seconds * 50)} frames = {a.seconds / floor:.1f}x real time: exact "
        f"5 fps samples of an H.264 stream need its reference frames decoded"
    )
    print(f"threads: torch {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; decord 1 thread")


if __name__ == "__main__":
    main()
