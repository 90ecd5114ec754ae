"""python -m rsnet.predict VIDEO... --checkpoint PATH [--json]

Applies a trained RealSmileNet to new videos. PATH is a checkpoint.pt or a trial directory;
the preprocessing (fps, face resolution, channels) is the one the checkpoint's saved config
was trained with, so no flag has to be repeated. Inputs may be video files, image-sequence
folders (frames in name order, at --image-fps), or folders of videos / image sequences.
For each input it prints the label (spontaneous / posed), P(spontaneous), the frames used and
the seconds spent decoding, finding the face and in the model. The exit status is non-zero
only when every input failed.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .batching import collate
from .checkpoint import read_checkpoint
from .config import TrialConfig
from .data.preprocess import IMAGE_SUFFIXES, PreprocessError, preprocess_video
from .model.plugins import VariantError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".m4v", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv")
LABELS = {1: "spontaneous", 0: "posed"}


def load_trained(path) -> tuple[torch.nn.Module, TrialConfig]:
    """(model in eval mode, its TrialConfig) from a checkpoint file or a trial directory (its
    selected.pt, the validation-selected model, if it has one, else checkpoint.pt: the model its
    predictions.csv comes from); loaded with torch.load(weights_only=True)."""
    path = Path(path)
    ckpt = path
    if path.is_dir():  # a trial: the model its headline accuracy comes from
        ckpt = path / "selected.pt" if (path / "selected.pt").is_file() else path / "checkpoint.pt"
    if not ckpt.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint (expected a checkpoint.pt or a trial directory holding one)")
    try:
        blob = read_checkpoint(ckpt)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{ckpt}: refused by torch.load(weights_only=True), it holds more than tensors and "
            f"plain containers ({str(e).splitlines()[0][:160]})"
        ) from e
    cfg = TrialConfig.from_saved(blob["config"], str(ckpt))
    try:
        model = cfg.model()
    except VariantError as e:  # a researcher's variant this environment lacks
        src = blob.get("variant_source") or {}
        need = f"{src['distribution']}=={src['version']}" if src.get("distribution") else "the package that provides it"
        raise VariantError(
            f"{ckpt}: trained with the variant {cfg.variant} (builder {src.get('builder', cfg.variant)}); "
            f"install {need} to load it ({e})"
        ) from e
    model.load_state_dict(blob["model"])
    return model.eval(), cfg


def expand_inputs(paths) -> list[tuple[Path, str]]:
    """(path, kind) per input: a video file; an image-sequence folder; or a folder's videos and
    image-sequence subfolders, in name order. Unknown paths are kept, to fail with a message."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            if any(c.suffix.lower() in IMAGE_SUFFIXES for c in p.iterdir()):
                out.append((p, "images"))
                continue
            for c in sorted(p.iterdir()):
                if c.is_file() and c.suffix.lower() in VIDEO_SUFFIXES:
                    out.append((c, "video"))
                elif c.is_dir() and any(x.suffix.lower() in IMAGE_SUFFIXES for x in c.iterdir()):
                    out.append((c, "images"))
        else:
            out.append((p, "video"))
    return out


@torch.no_grad()
def score_clip(model, crops: np.ndarray, device: str = "cpu") -> float:
    """P(spontaneous) for one clip of uint8 crops (T, C, R, R)."""
    frames, lengths = collate([crops])  # (1, T, C, R, R), (1,)
    return float(model(frames.to(device), lengths).float().cpu()[0])


def predict_one(model, cfg: TrialConfig, path: Path, kind: str, image_fps: float = 25.0) -> dict:
    """One input -> {input, label, probability, frames, *_seconds} or {input, error}."""
    try:
        crops, info = preprocess_video(str(path), kind, image_fps, cfg.prep())
    except PreprocessError as e:
        return {"input": str(path), "error": str(e)}
    t0 = time.perf_counter()
    p = score_clip(model, crops)
    model_s = time.perf_counter() - t0
    return {
        "input": str(path),
        "label": LABELS[int(p > 0.5)],
        "probability_spontaneous": p,
        "frames": int(info["frames"]),
        "faces_found": int(info["face_found"]),
        "duration_seconds": info["native_frames"] / info["native_fps"],
        "decode_seconds": info["decode_seconds"],
        "face_seconds": info["face_seconds"],
        "model_seconds": round(model_s, 4),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rsnet.predict", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("inputs", nargs="+", help="video files, image-sequence folders, or folders of them")
    ap.add_argument("--checkpoint", required=True, help="a checkpoint.pt or a trial directory")
    ap.add_argument("--json", action="store_true", help="one JSON object per input (JSON lines)")
    ap.add_argument("--image-fps", type=float, default=25.0, help="frame rate of image sequences (default 25)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all this process may use)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        model, cfg = load_trained(a.checkpoint)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as e:
        print(f"predict: {e}", file=sys.stderr)
        return 2
    inputs = expand_inputs(a.inputs)
    if not inputs:
        print("predict: no videos or image sequences in the given folders", file=sys.stderr)
        return 2
    if not a.json:
        print(
            f"predict: {cfg.variant} model ({a.checkpoint}), {cfg.fps:g} fps, {cfg.resolution} px, "
            f"{cfg.channels} channel(s)"
        )
    ok = 0
    for path, kind in inputs:
        r = predict_one(model, cfg, path, kind, a.image_fps)
        ok += "error" not in r
        if a.json:
            print(json.dumps(r), flush=True)
        elif "error" in r:
            print(f"{path}: FAILED: {r['error']}", flush=True)
        else:
            print(
                f"{path}: {r['label']} (P(spontaneous) = {r['probability_spontaneous']:.3f}), {r['frames']} frames; "
                f"decode {r['decode_seconds']:.2f} s, face {r['face_seconds']:.2f} s, "
                f"model {r['model_seconds']:.3f} s",
                flush=True,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
