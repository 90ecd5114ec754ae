"""The report's figures as PNG (matplotlib, no display): Fig. 6 heatmaps of accuracy over
fps x resolution, Fig. 7 subgroup accuracy and misprediction shares, learning curves per
variant from metrics.jsonl. Every title says when the data are synthetic."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..provenance import synthetic_title
from .aggregate import labels


def _title(text: str, synthetic: bool) -> str:
    return synthetic_title(text, synthetic)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fps_resolution_heatmaps(cells: pd.DataFrame, out: Path) -> list[Path]:
    """Fig. 6: one heatmap per (sweep, dataset, cells alike but for fps and resolution) whose
    full-model cells vary fps and resolution."""
    paths = []
    c = cells[(cells.variant == "full") & (cells.split == "kfold") & (cells.temporal_control == "none")]
    c = c.assign(label=labels(c, ["dataset", "fps", "resolution"]) if len(c) else "")
    for (sweep, dataset, label), g in c.groupby(["sweep", "dataset", "label"], sort=True):
        if g.fps.nunique() * g.resolution.nunique() < 2:
            continue
        grid = g.pivot_table(index="fps", columns="resolution", values="mean", aggfunc="first")
        fig, ax = plt.subplots(figsize=(1.4 * grid.shape[1] + 2, 1.0 * grid.shape[0] + 1.6))
        im = ax.imshow(100 * grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [f"{r}" for r in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [f"{f:g}" for f in grid.index])
        ax.set_xlabel("face resolution (px)")
        ax.set_ylabel("frame rate (fps)")
        values = grid.to_numpy(dtype=float)
        middle = np.nanmean(values)
        for (i, j), v in np.ndenumerate(values):
            ax.text(
                j,
                i,
                "—" if np.isnan(v) else f"{100 * v:.1f}",
                ha="center",
                va="center",
                color="k" if v > middle else "w",
            )
        fig.colorbar(im, ax=ax, label="accuracy (%)")
        partial = " (some cells incomplete: see fps_resolution.md)" if (g.flag != "").any() else ""
        which = "" if c[(c.sweep == sweep) & (c.dataset == dataset)].label.nunique() == 1 else f", {label}"
        ax.set_title(_title(f"Fig. 6 ({sweep}, {dataset}{which}){partial}", bool(g.synthetic.any())), fontsize=9)
        slug = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in which[2:])
        paths.append(_save(fig, out / f"fig6_{sweep}_{dataset}{'_' + slug if slug else ''}.png"))
    return paths


def subgroup_figures(subgroups: pd.DataFrame, mispredictions: pd.DataFrame, out: Path, synthetic: bool) -> list[Path]:
    """Fig. 7 as one figure, whichever sweeps hold its halves (the paper's protocol: subgroups
    and benchmark): accuracy within each group (left), and where the full model's UvA-NEMO
    mispredictions fall (right; of the sweep and setting with the most test videos, named)."""
    if subgroups.empty and mispredictions.empty:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    s = subgroups
    if len(s):
        x = np.arange(len(s))
        which = s.sweep + " " + s.setting
        names = [f"{g}\n{w}" if which.nunique() > 1 else g for g, w in zip(s.group, which)]
        axes[0].bar(x, 100 * s["mean"].astype(float), yerr=100 * s["std"].astype(float).fillna(0), capsize=3)
        axes[0].set_xticks(x, names, fontsize=7 if which.nunique() > 1 else None)
        axes[0].set_ylabel("accuracy (%)")
        axes[0].set_ylim(0, 100)
        axes[0].set_title(f"trained and tested within one group ({', '.join(sorted(set(s.sweep)))})", fontsize=9)
    else:
        axes[0].axis("off")
        axes[0].text(0.5, 0.5, "no within-group trials in these results", ha="center", va="center")
    if len(mispredictions):
        m = mispredictions
        most = m.groupby(["sweep", "setting"]).videos.sum().idxmax()
        m = m[(m.sweep == most[0]) & (m.setting == most[1])]
        x = np.arange(len(m))
        axes[1].bar(x - 0.2, m.share_of_videos, 0.4, label="share of test videos")
        axes[1].bar(x + 0.2, m.share_of_mispredictions.fillna(0), 0.4, label="share of mispredictions")
        axes[1].set_xticks(x, [f"{g}, {a}" for g, a in zip(m.gender, m.age_group)], rotation=20)
        axes[1].set_ylabel("%")
        axes[1].legend(fontsize=8)
        axes[1].set_title(f"where mispredictions fall ({most[0]} {most[1]}, UvA-NEMO 10 folds)", fontsize=9)
    else:
        axes[1].axis("off")
        axes[1].text(0.5, 0.5, "no UvA-NEMO full-model predictions in these results", ha="center", va="center")
    fig.suptitle(_title("Fig. 7", synthetic), fontsize=10)
    return [_save(fig, out / "fig7.png")]


def learning_curves(trials: pd.DataFrame, curves: pd.DataFrame, out: Path) -> list[Path]:
    """Per sweep: mean test accuracy and train loss per epoch for each dataset and cell (a setting,
    labelled by the fields that tell its cells apart)."""
    paths = []
    if curves.empty:
        return paths
    t = trials.assign(setting=labels(trials, ["dataset"]))
    c = curves.merge(t[["trial", "sweep", "dataset", "split", "setting", "synthetic"]], on="trial")
    for sweep, g in c.groupby("sweep", sort=True):
        datasets = sorted(g.dataset.unique())
        fig, axes = plt.subplots(2, len(datasets), figsize=(4.2 * len(datasets), 6), squeeze=False)
        for j, dataset in enumerate(datasets):
            d = g[g.dataset == dataset]
            for setting, h in d.groupby("setting", sort=True):
                mean = h.groupby("epoch")[["test_acc", "train_loss"]].mean()
                n = h.trial.nunique()
                axes[0, j].plot(mean.index, 100 * mean.test_acc, label=f"{setting} ({n})")
                axes[1, j].plot(mean.index, mean.train_loss, label=f"{setting} ({n})")
            axes[0, j].set_title(dataset, fontsize=9)
            axes[0, j].set_ylabel("test accuracy (%)")
            axes[1, j].set_ylabel("train loss")
            axes[1, j].set_xlabel("epoch")
            axes[0, j].legend(fontsize=7, title="setting (trials)", title_fontsize=7)
        synthetic = bool(g.synthetic.fillna(False).astype(bool).any())
        fig.suptitle(_title(f"Learning curves ({sweep}), mean over trials", synthetic), fontsize=10)
        paths.append(_save(fig, out / f"curves_{sweep}.png"))
    return paths
