"""Write the report: every table as Markdown, CSV and LaTeX, the figures as PNG, the per-seed
and per-cell numbers as CSV, and index.md showing everything together."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd

from ..provenance import synthetic_title
from . import aggregate, audit, figures, published, resampling, search, tables
from .load import load_all
from .tables import Table

# the aggregation docstring's bullet list, one line per bullet
DEFINITIONS = re.sub(r"\n\s+(?!- )", " ", aggregate.__doc__.split("\n\n", 1)[1].strip())


def write_table(t: Table, out: Path) -> None:
    df = t.df
    df.to_csv(out / f"{t.name}.csv", index=False)
    md = (
        df.to_markdown(index=False, disable_numparse=True)
        if len(df)  # values as written, "80.0" stays
        else "(no trials of this kind in these results)"
    )
    (out / f"{t.name}.md").write_text(f"### {t.full_title}\n\n{md}\n" + (f"\n{t.note}\n" if t.note else ""))
    latex = (
        df.to_latex(index=False, escape=True, caption=t.full_title, label=f"tab:{t.name}")
        if len(df)
        else f"% {t.full_title}: no trials of this kind in these results\n"
    )
    (out / f"{t.name}.tex").write_text(latex)


def build_report(results, out=None) -> dict:
    """Read every sweep under `results` (or one sweep directory) and write the report into
    `out` (default <results>/report). Returns {"out", "tables", "figures", "synthetic", ...}."""
    results = Path(results)
    out = Path(out) if out else results / "report"
    out.mkdir(parents=True, exist_ok=True)
    sweeps = load_all(results)
    trials = pd.concat([s.trials for s in sweeps], ignore_index=True)
    predictions = pd.concat([s.predictions for s in sweeps], ignore_index=True)
    curves = pd.concat([s.curves for s in sweeps], ignore_index=True)
    seeds = aggregate.per_seed(trials, predictions)
    cells = aggregate.summarise(seeds) if len(seeds) else pd.DataFrame(columns=aggregate.CELL)
    if len(cells):
        cells = cells.merge(resampling.video_intervals(trials, predictions, seeds), on=aggregate.CELL, how="left")
    pairs = resampling.paired(trials, predictions)
    seeds.to_csv(out / "per_seed.csv", index=False)
    cells.to_csv(out / "cells.csv", index=False)
    synthetic = bool(trials.synthetic.fillna(False).astype(bool).any())

    sub = tables.subgroups(cells)
    mis = tables.mispredictions(trials, predictions)
    chance = published.majority(trials, predictions)
    made = [
        tables.table2(cells, chance),
        *tables.table3(cells, pairs, chance),
        tables.fps_resolution(cells),
        tables.cross_domain(cells, chance),
        sub,
        mis,
        audit.honesty_table(aggregate.honesty(trials)),
        search.search_table(sweeps, synthetic),
        audit.readings(trials),
        audit.failures(trials),
    ]
    for t in made:
        if t.name in ("failed_trials", "readings") or t.df.empty:  # no numbers of its own: marked as the report
            t.synthetic = synthetic
        write_table(t, out)
    pngs = [
        *figures.fps_resolution_heatmaps(cells, out),
        *figures.subgroup_figures(sub.df, mis.df, out, sub.synthetic or mis.synthetic),
        *figures.learning_curves(trials, curves, out),
    ]
    _index(out, sweeps, trials, made, pngs, synthetic)
    return {
        "out": out,
        "tables": [t.name for t in made],
        "figures": [p.name for p in pngs],
        "synthetic": synthetic,
        "trials": len(trials),
        "finished": int((trials.status == "finished").sum()),
        "failed": int((trials.status == "failed").sum()),
    }


def _method_lines(made: list[Table]) -> list[str]:
    """One sentence per method, setting or variant the tables name (methods.csv), in table order."""
    known = published.method_descriptions()
    named = [str(v) for t in made for c in ("method", "setting") if c in t.df for v in t.df[c]]
    named = [n.split(", ")[0].split(" (")[0] for n in named]  # "RealSmileNet, ours: demo", "full (crop box)"
    return [f"- **{n}**: {known[n]}" for n in dict.fromkeys(named) if n in known]


def _user_variant_lines(trials: pd.DataFrame) -> list[str]:
    """A sentence per researcher's variant (rsnet.model.plugins): its builder's docstring."""
    from ..model import VARIANTS, plugins

    lines = []
    for v in sorted(set(trials.get("variant", pd.Series(dtype=object)).dropna()) - set(VARIANTS)):
        try:
            said = plugins.describe(v) or "(its builder has no docstring)"
        except plugins.VariantError as e:
            said = f"(not importable where this report ran: {e})"
        lines.append(f"- **user variant `{v}`**: {said}")
    return lines


def _index(out: Path, sweeps, trials: pd.DataFrame, made: list[Table], pngs: list[Path], synthetic: bool) -> None:
    title = synthetic_title("rsnet report", synthetic)
    lines = [f"# {title}", "", f"Written {time.strftime('%Y-%m-%d %H:%M')} from {len(sweeps)} sweep(s).", ""]
    if synthetic:
        lines += [
            (
                "**Some or all of these results come from synthetic look-alike corpora. They are not the "
                "paper's numbers; the paper's published values appear only in rows labelled `published`.**"
            ),
            "",
        ]
    lines += [
        "## Sweeps",
        "",
        pd.DataFrame(
            [
                {
                    "sweep": s.name,
                    "trials": len(s.trials),
                    **s.trials.status.value_counts().to_dict(),
                    "description": s.description,
                }
                for s in sweeps
            ]
        )
        .fillna(0)
        .to_markdown(index=False),
        "",
    ]
    lines += ["## How the numbers are computed", "", DEFINITIONS, ""]
    lines += ["## Methods", "", *_method_lines(made), *_user_variant_lines(trials), ""]
    for t in made:
        body = t.df.to_markdown(index=False) if len(t.df) else "(no trials of this kind in these results)"
        lines += [f"## {t.full_title}", "", body, ""]
        if t.note:
            lines += [t.note, ""]
        lines += [f"Files: [{t.name}.csv]({t.name}.csv), [{t.name}.md]({t.name}.md), [{t.name}.tex]({t.name}.tex)", ""]
    lines += ["## Figures", ""] + [f"![{p.stem}]({p.name})\n" for p in pngs]
    lines += ["Per-seed and per-cell numbers: [per_seed.csv](per_seed.csv), [cells.csv](cells.csv).", ""]
    (out / "index.md").write_text("\n".join(lines))
