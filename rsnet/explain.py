"""python -m rsnet.explain {cam,tsne}: what a trained RealSmileNet looks at, and what it learned.

python -m rsnet.explain cam VIDEO... --checkpoint PATH [--frames 8] [--cell 128] [--out explain/]
    Score-CAM (Wang et al., CVPR-W 2020) over the FPN's feature maps, blended on sampled
    input frames of each video (the paper's Fig. 4): <out>/<video>_scorecam.png, a strip of
    --frames face crops (top row) and the same crops with the heatmap (bottom row), each
    --cell pixels square, so the image is (frames * cell) x (2 * cell).
python -m rsnet.explain tsne TRIAL_DIR [--out TRIAL_DIR/explain]
    2-D t-SNE of the classification block's embeddings (after its ReLU) for the trial's
    test fold, coloured by class (the paper's Fig. 5): <out>/tsne.png, 600 x 600 pixels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .batching import batches, collate
from .data.preprocess import PreprocessError, preprocess_video
from .predict import expand_inputs, load_trained
from .provenance import synthetic_title

TSNE_PIXELS = 600


NEEDS = {  # what each method reads of a model beyond the forward contract
    "cam": ("encoder", "per-frame `encoder` module (Score-CAM masks the frames with its feature maps)"),
    "tsne": ("embed", "`embed(frames, lengths)` method giving (B, D) features"),
}


def can_serve(model, cfg, method: str) -> None:
    """A ValueError naming what `method` needs when the model (a researcher's variant) lacks it."""
    attr, what = NEEDS[method]
    if not hasattr(model, attr):
        others = [m for m, (a, _) in NEEDS.items() if m != method and hasattr(model, a)]
        raise ValueError(
            f"explain {method}: the model of variant {cfg.variant} has no {what}"
            + (f"; it can serve: explain {', '.join(others)}" if others else "; it can serve neither cam nor tsne")
        )


@torch.no_grad()
def score_cam(model, crops: np.ndarray) -> tuple[np.ndarray, float]:
    """Score-CAM over the per-frame encoder's (the FPN's) K feature maps of one clip.

    Each map A_k (upsampled to the input, scaled to [0, 1]) masks every frame; the model's score
    for the predicted class on the masked clip, softmax-normalised over k, weighs A_k; the CAM
    is ReLU(sum_k w_k A_k), per frame. Returns (T, R, R) heatmaps in [0, 1] and P(spontaneous)."""
    frames, lengths = collate([crops])  # (1, T, C, R, R), (1,)
    R = frames.shape[-1]
    got = {}
    hook = model.encoder.register_forward_hook(lambda m, i, o: got.__setitem__("maps", o))
    try:
        p = float(model(frames, lengths)[0])
    finally:
        hook.remove()
    maps = got["maps"]  # (T, K, S, S): real frames only
    up = F.interpolate(maps, size=(R, R), mode="bilinear", align_corners=False)  # (T, K, R, R)
    lo, hi = up.amin((2, 3), keepdim=True), up.amax((2, 3), keepdim=True)
    masks = (up - lo) / (hi - lo).clamp_min(1e-8)
    target = 1 if p > 0.5 else 0
    scores = []
    for k in range(maps.shape[1]):
        q = model(frames * masks[None, :, k : k + 1], lengths)[0]  # (1, T, C, R, R) * (1, T, 1, R, R)
        scores.append(q if target else 1 - q)
    w = torch.softmax(torch.stack(scores), 0)  # (K,)
    cam = F.relu((w[None, :, None, None] * up).sum(1))  # (T, R, R)
    cam = cam / cam.amax().clamp_min(1e-8)
    return cam.numpy(), p


def pick_frames(n_frames: int, n: int) -> np.ndarray:
    """n indices spread evenly over the clip (all of them when it is shorter)."""
    return np.unique(np.linspace(0, n_frames - 1, min(n, n_frames)).round().astype(int))


def render_cam(crops: np.ndarray, cam: np.ndarray, idx: np.ndarray, cell: int, alpha: float = 0.5):
    """PIL image (len(idx) * cell) x (2 * cell): crops on top, crops with the heatmap below."""
    from matplotlib import colormaps
    from PIL import Image

    jet = colormaps["jet"]
    sheet = Image.new("RGB", (len(idx) * cell, 2 * cell))
    for j, i in enumerate(idx):
        rgb = crops[i].transpose(1, 2, 0)
        rgb = np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb
        face = Image.fromarray(rgb).resize((cell, cell), Image.BILINEAR)
        heat = Image.fromarray((jet(cam[i])[..., :3] * 255).astype(np.uint8)).resize((cell, cell), Image.BILINEAR)
        sheet.paste(face, (j * cell, 0))
        sheet.paste(Image.blend(face, heat, alpha), (j * cell, cell))
    return sheet


@torch.no_grad()
def embeddings(model, data, batch_size: int = 32) -> np.ndarray:
    """Classification-block embeddings (B, D) of every clip of a ClipSet, in its order."""
    out = None
    for frames, lengths, _, idx in batches(data, batch_size, False):
        e = model.embed(frames, lengths).numpy()
        out = np.zeros((len(data), e.shape[1]), np.float32) if out is None else out
        out[idx] = e
    return out


def tsne_figure(trial_dir: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    from .trial import load_data

    model, cfg = load_trained(trial_dir)
    can_serve(model, cfg, "tsne")
    _, _, test, facts = load_data(cfg)
    if len(test) < 3:
        raise ValueError(f"{trial_dir}: a t-SNE needs at least 3 test videos; this fold has {len(test)}")
    emb = embeddings(model, test)
    xy = TSNE(
        n_components=2, perplexity=float(min(30, max(2, (len(emb) - 1) // 3))), init="pca", random_state=0
    ).fit_transform(emb)
    fig, ax = plt.subplots(figsize=(TSNE_PIXELS / 100, TSNE_PIXELS / 100), dpi=100)
    for label, name, colour in ((1, "spontaneous", "tab:orange"), (0, "posed", "tab:blue")):
        sel = test.labels == label
        ax.scatter(xy[sel, 0], xy[sel, 1], s=18, c=colour, label=f"{name} ({sel.sum()})")
    ax.legend()
    ax.set_xticks([])
    ax.set_yticks([])
    title = f"t-SNE of test-fold embeddings: {cfg.dataset} {cfg.split} fold {cfg.fold}, {cfg.variant}"
    ax.set_title(synthetic_title(title, facts["synthetic"]), fontsize=8)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tsne.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def cam_images(inputs, checkpoint, out: Path, n_frames: int, cell: int, image_fps: float) -> tuple[int, int]:
    model, cfg = load_trained(checkpoint)
    can_serve(model, cfg, "cam")
    out.mkdir(parents=True, exist_ok=True)
    ok = failed = 0
    for path, kind in expand_inputs(inputs):
        try:
            crops, _ = preprocess_video(str(path), kind, image_fps, cfg.prep())
        except PreprocessError as e:
            print(f"{path}: FAILED: {e}")
            failed += 1
            continue
        cam, p = score_cam(model, crops)
        idx = pick_frames(len(crops), n_frames)
        dest = out / f"{path.stem}_scorecam.png"
        render_cam(crops, cam, idx, cell).save(dest)
        print(
            json.dumps(
                {"input": str(path), "image": str(dest), "probability_spontaneous": p, "frames_shown": idx.tolist()}
            )
        )
        ok += 1
    return ok, failed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rsnet.explain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cam", help="Score-CAM heatmaps on sampled frames (Fig. 4)")
    c.add_argument("inputs", nargs="+")
    c.add_argument("--checkpoint", required=True, help="a checkpoint.pt or a trial directory")
    c.add_argument("--frames", type=int, default=8, help="frames shown per video (default 8)")
    c.add_argument("--cell", type=int, default=128, help="pixels per frame in the image (default 128)")
    c.add_argument("--image-fps", type=float, default=25.0)
    c.add_argument("--out", default="explain")
    t = sub.add_parser("tsne", help="t-SNE of the test fold's embeddings (Fig. 5)")
    t.add_argument("trial", help="a trial directory (config.json, checkpoint.pt)")
    t.add_argument("--out", help="default TRIAL/explain")
    a = ap.parse_args(argv)
    try:
        if a.what == "cam":
            ok, _ = cam_images(a.inputs, a.checkpoint, Path(a.out), a.frames, a.cell, a.image_fps)
            return 0 if ok else 1
        path = tsne_figure(Path(a.trial), Path(a.out) if a.out else Path(a.trial) / "explain")
        print(f"explain: t-SNE of the test fold's embeddings -> {path}")
        return 0
    except (FileNotFoundError, ValueError) as e:
        print(f"explain: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
