"""Does RealSmileNet learn the synthetic smiles? Trials on a small synthetic UvA-NEMO corpus.

    python bench/learning.py --root DIR [--folds 1 2 --seeds 0 1 2 --settings paper demo --workers 2]
    python bench/learning.py --root DIR --crops rendered encoded box aligned --settings demo
    python bench/learning.py --root DIR --crop-error

Runs, for each fold x seed: the paper's settings (lr 1e-3, batch 16, Adam decay 0.005, 60
epochs) and the demo's (its sweep file's: lr 3e-3, batch 8, no decay, 25 epochs), each also
with the ConvLSTM forget-gate bias at 1.0 and as two controls without temporal signal (frames
shuffled in time; one frame per video).
Prints one row per setting: final-epoch accuracy on held-out subjects pooled over the trials'
test videos, the mean over trials and its min/max, trials that stalled (train accuracy < 0.6
at the end), minutes. --fpn-dropout 0.2 gives every setting the authors' per-frame Dropout2d
in the FPN (default: none, the paper's text).
Trial directories land in --out (kept; rerunning resumes/reuses them).

--crops trains the same trials on crops made each way (bench/crops.py: the renderer's frames
or the decoded video cut at the true face square; the pipeline's `box` and `aligned` crops),
to find where between the rendered face and the cache a smile's dynamics are lost.
--crop-error measures the pipeline's crops against the true face square instead.
"""

from __future__ import annotations

import argparse
import itertools
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from crops import CROP_MODES, crop_error, truth_preprocessor

from rsnet.sweep.spec import load_sweep, resolve_sweep_path

# the demo's settings, read from its sweep file (its epochs included)
DEMO = dict(load_sweep(resolve_sweep_path("demo")).defaults)
PAPER = {"epochs": 60}  # the paper's lr 1e-3, batch 16 and decay 0.005 are TrialConfig's defaults
SETTINGS = {  # --epochs, when given, replaces each setting's own
    "paper": PAPER,
    "forget_bias": {**PAPER, "forget_bias": 1.0},
    "paper_shuffled": {**PAPER, "temporal_control": "shuffle"},
    "paper_single": {**PAPER, "temporal_control": "single_frame"},
    "demo": DEMO,
    "demo_forget_bias": {**DEMO, "forget_bias": 1.0},
    "demo_shuffled": {**DEMO, "temporal_control": "shuffle"},
    "demo_single": {**DEMO, "temporal_control": "single_frame"},
}


def one(args):
    from rsnet.config import TrialConfig
    from rsnet.runtime import configure_process
    from rsnet.trial import run_trial

    name, overrides, fold, seed, crops, a = args
    overrides = {**overrides, **({"epochs": a.epochs} if a.epochs else {})}
    overrides.update({} if a.fpn_dropout is None else {"fpn_dropout": a.fpn_dropout})
    cfg = TrialConfig(dataset="uvanemo", root=a.root, fold=fold, seed=seed, threads=1, **overrides)
    cfg = cfg.replace(**_crop_settings(crops, a))
    out = Path(a.out) / crops / cfg.hash()
    configure_process(cfg.threads)  # one trial per worker process, one thread each
    t0 = time.perf_counter()
    r = run_trial(cfg, out)
    hist = pd.read_json(out / "metrics.jsonl", lines=True)
    return {
        "crops": crops,
        "setting": name,
        "fold": fold,
        "seed": seed,
        "epochs": cfg.epochs,
        "accuracy": r["accuracy"],
        "videos": len(pd.read_csv(out / "predictions.csv")),
        "optimistic": r["optimistic_accuracy"],
        "final_train_acc": hist.train_acc.iloc[-1],
        "minutes": r["train_seconds"] / 60,
        "wall": time.perf_counter() - t0,
    }


def _crop_settings(crops: str, a) -> dict:
    """The trial's crop option and cache root for a way of making crops: the pipeline's own
    for box and aligned; a cache of their own for the truth-cut crops."""
    if crops in ("box", "aligned"):
        return {"crop": crops, "cache": a.cache}
    return {"crop": "box", "cache": str(Path(a.out) / f"cache-{crops}")}


def build_caches(a) -> None:
    """Each way's cache, built once (the truth-cut ones by bench/crops.py's stand-in for the
    pipeline's per-video function)."""
    import rsnet.data.cache as cache
    from rsnet.config import TrialConfig

    for crops in a.crops:
        cfg = TrialConfig(dataset="uvanemo", root=a.root, **_crop_settings(crops, a))
        original = cache.preprocess_video
        if crops not in ("box", "aligned"):
            cache.preprocess_video = truth_preprocessor(a.root, crops)
        try:
            cache.load_or_build("uvanemo", a.root, cfg.prep(), cfg.cache or None)
        finally:
            cache.preprocess_video = original


def report_crop_error(a) -> None:
    from rsnet.data import list_videos
    from rsnet.data.preprocess import PrepConfig

    videos = list_videos("uvanemo", a.root)
    rows = []
    for crop in ("box", "aligned"):
        df = crop_error(a.root, videos, PrepConfig(crop=crop))
        rows.append({"crop": crop, **{c: df[c].mean() for c in df.columns[1:]}, "clips": len(df)})
        rows[-1].update({f"{c} (worst clip)": df[c].max() for c in ("centre_mean", "jitter_mean")})
        rows[-1]["with_smile (worst clip)"] = df.with_smile.abs().max()
        rows[-1].update({"face_side min": df.face_side.min(), "face_side max": df.face_side.max()})
    print(f"crop error against the true face square, pixels of the 48 px crop ({a.root})")
    print(pd.DataFrame(rows).set_index("crop").T.to_markdown(floatfmt=".2f"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--folds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=0, help="for every setting (default: each its own)")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS))
    ap.add_argument("--fpn-dropout", type=float, default=None, help="for every setting (default: TrialConfig's, 0)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="results/bench-learning")
    ap.add_argument("--cache", default="")
    ap.add_argument("--crops", nargs="+", default=["aligned"], choices=CROP_MODES, help="ways to make the crops")
    ap.add_argument("--crop-error", action="store_true", help="only measure the crops against the truth")
    a = ap.parse_args()
    if a.crop_error:
        return report_crop_error(a)
    build_caches(a)
    grid = itertools.product(a.crops, a.settings, a.folds, a.seeds)
    jobs = [(n, SETTINGS[n], f, s, c, a) for c, n, f, s in grid]
    with ProcessPoolExecutor(a.workers) as pool:
        rows = list(pool.map(one, jobs))
    df = pd.DataFrame(rows)
    df.to_csv(Path(a.out) / "learning.csv", index=False)
    df["correct"] = df.accuracy * df.videos
    summary = df.groupby(["crops", "setting"], sort=False).agg(
        pooled=("correct", "sum"),
        videos=("videos", "sum"),
        trials=("accuracy", "size"),
        accuracy=("accuracy", "mean"),
        min=("accuracy", "min"),
        max=("accuracy", "max"),
        optimistic=("optimistic", "mean"),
        stalled=("final_train_acc", lambda x: int((x < 0.6).sum())),
        epochs=("epochs", "max"),
        minutes=("minutes", "mean"),
    )
    summary["pooled"] /= summary.pop("videos")  # accuracy over every test video of the trials
    print(f"held-out accuracy on {a.root} (folds {a.folds}, seeds {a.seeds})")
    print(summary.to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
