"""Sweep files: YAML naming the settings that differ from the trial defaults and the axes to cross.

    name: ablations                  # results land in results/<name>/
    description: Table 3 ...
    defaults: {epochs: 60}           # TrialConfig fields for every trial (only what differs)
    axes:                            # crossed; each a TrialConfig field with a list of values, or
      dataset: [uvanemo, bbc, mmi, spos]
      fold: all                      # `all`: every fold of the dataset's protocol for the split
      seed: 10                       # an integer N: seeds 0..N-1 (the paper's "mean of ten trials")
      setting:                       # named bundles of overrides (one axis)
        full: {}
        no_tsa: {variant: no_tsa}
    resources: {cpu: 1, gpu: 0}      # per trial; gpu may be fractional (0.25: four trials per GPU)
    max_failures: 2                  # Ray retries of a failed trial (from its checkpoint)
    synthetic: {size: small, seed: 0}   # optional: generate synthetic look-alike corpora as data

Datasets are found under the data root (--data-root, $RSNET_DATA, default ./data) as
<data-root>/<dataset>/, or <data-root>/synthetic-<size>[-seed<N>]/<dataset>/ for synthetic sweeps.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import SETTABLE_FIELDS, SWEEP_DEFAULT_FIELDS, TrialConfig
from ..data.splits import folds_for, parse_split
from ..model import VARIANTS
from .search import Search, parse_search

TOP_KEYS = {"name", "description", "defaults", "axes", "resources", "max_failures", "synthetic", "search"}
# what a sweep may vary (axes, settings) and set for every trial (defaults): from the fields' roles
SET_BY_SEARCH = {"inner_folds": "search.inner_folds", "inner_fold": "search.inner_folds", "tuned": "search"}
AXIS_FIELDS = set(SETTABLE_FIELDS) - set(SET_BY_SEARCH)
DEFAULT_FIELDS = set(SWEEP_DEFAULT_FIELDS) - set(SET_BY_SEARCH)
SET_BY_SWEEP = {
    "root": "--data-root",
    "target_root": "--data-root",
    "cache": "--cache",
    "threads": "resources.cpu",
    **SET_BY_SEARCH,
}
RESOURCE_KEYS = {"cpu", "gpu"}
SYNTH_KEYS = {"size", "seed", "frame_size", "difficulty", "design"}


class SweepError(ValueError):
    """A sweep file that cannot run; the message names the file and the key."""


@dataclass
class Trial:
    name: str  # directory name under results/<sweep>/trials/
    setting: str  # the `setting` axis value ("" if none)
    config: TrialConfig


@dataclass
class Sweep:
    name: str
    path: Path
    description: str = ""
    defaults: dict = field(default_factory=dict)
    axes: dict = field(default_factory=dict)
    resources: dict = field(default_factory=lambda: {"cpu": 1, "gpu": 0})
    max_failures: int = 2
    synthetic: dict | None = None
    search: Search | None = None  # nested cross-validation of a hyper-parameter search (search.py)

    def data_dir(self, data_root: Path, dataset: str) -> Path:
        if not self.synthetic:
            return Path(data_root) / dataset
        seed = self.synthetic.get("seed", 0)  # each corpus seed its own folder; seed 0 the plain name
        return (
            Path(data_root)
            / f"synthetic-{self.synthetic.get('size', 'small')}{f'-seed{seed}' if seed else ''}"
            / dataset
        )

    def datasets(self) -> set[str]:
        """Every dataset a trial reads (trial datasets and cross-domain targets)."""
        out = set()
        for merged, _ in self._combinations():
            out.add(merged.get("dataset", "uvanemo"))
            if target := parse_split(merged.get("split", "kfold")).target:
                out.add(target)
        return out

    def _combinations(self):
        """(settings, setting name) of each combination of the named axes and the settings."""
        axes = {k: v for k, v in self.axes.items() if k not in ("setting", "fold", "seed")}
        settings = self.axes.get("setting") or {"": {}}
        for values, (setting, overrides) in itertools.product(itertools.product(*axes.values()), settings.items()):
            yield {**self.defaults, **dict(zip(axes, values)), **overrides}, setting

    def trials(self, data_root) -> list[Trial]:
        """Expand the sweep: the product of its named axes and its settings, then of each
        combination's folds (`fold: all` = the protocol's) and seeds."""
        fold_axis = self.axes.get("fold", "all")
        seed_axis = self.axes.get("seed", [self.defaults.get("seed", 0)])
        seeds = list(range(seed_axis)) if isinstance(seed_axis, int) else list(seed_axis)
        out = []
        for merged, setting in self._combinations():
            folds = self._folds(merged, data_root) if fold_axis == "all" else list(fold_axis)
            out += [
                self._trial(merged, setting, fold, seed, data_root) for fold, seed in itertools.product(folds, seeds)
            ]
        return out

    def _folds(self, merged: dict, data_root) -> list[int]:
        """Every fold of the combination's protocol (a corpus of one's own: read from its root)."""
        dataset = merged.get("dataset", "uvanemo")
        try:
            return folds_for(
                merged.get("split", "kfold"),
                dataset,
                self.data_dir(data_root, dataset),
                merged.get("n_folds", TrialConfig.n_folds),
            )
        except ValueError as e:  # DatasetError included
            raise SweepError(f"{self.path}: dataset {dataset!r}: {e}") from e

    def _trial(self, merged: dict, setting: str, fold: int, seed: int, data_root) -> Trial:
        cfg = TrialConfig.from_dict({**merged, "fold": fold, "seed": seed}, str(self.path))
        cfg.root = str(self.data_dir(data_root, cfg.dataset))
        if cfg.target():
            cfg.target_root = str(self.data_dir(data_root, cfg.target()))
        try:
            cfg.validate()
        except ValueError as e:
            raise SweepError(f"{self.path}: {e}") from e
        return Trial(trial_name(cfg, setting), setting, cfg)


def trial_name(cfg: TrialConfig, setting: str) -> str:
    split = re.sub(r"[^A-Za-z0-9]+", "-", cfg.split.replace("->", "-to-"))
    parts = [
        cfg.dataset,
        split,
        f"f{cfg.fold}",
        f"s{cfg.seed}",
        setting or cfg.variant,
        f"fps{cfg.fps:g}",
        f"r{cfg.resolution}",
        cfg.hash()[:8],
    ]
    return "_".join(p for p in parts if p)


def _check_keys(path, where: str, got: dict, allowed: set) -> None:
    if not isinstance(got, dict):
        raise SweepError(f"{path}: {where} must be a mapping, got {type(got).__name__}")
    if unknown := sorted(set(got) - allowed):
        trial_fields = where.split(".")[0] in ("defaults", "axes")
        if trial_fields and unknown[0] in SET_BY_SWEEP:
            raise SweepError(f"{path}: {where}.{unknown[0]}: the sweep sets it from {SET_BY_SWEEP[unknown[0]]}")
        if trial_fields and unknown[0] in DEFAULT_FIELDS:
            raise SweepError(f"{path}: {where}.{unknown[0]} does not change a result: set it in defaults")
        raise SweepError(
            f"{path}: unknown key {where + '.' if where != '(top level)' else ''}{unknown[0]}; "
            f"valid: {', '.join(sorted(allowed))}"
        )


def load_sweep(path, data_root="/") -> Sweep:
    """Read and validate a sweep file; every error names the file and the key. Every trial's
    settings are checked as planned under `data_root` (where a corpus of one's own is read for its
    folds); None: the file's keys only."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: no such sweep file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SweepError(f"{path}: not valid YAML ({e})") from e
    _check_keys(path, "(top level)", raw, TOP_KEYS)
    name = raw.get("name") or path.stem
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name)):
        raise SweepError(f"{path}: name {name!r} must be letters, digits, '_', '.', '-'")
    defaults = raw.get("defaults") or {}
    _check_keys(path, "defaults", defaults, DEFAULT_FIELDS)
    axes = raw.get("axes") or {}
    _check_keys(path, "axes", axes, AXIS_FIELDS | {"setting"})
    for key, values in axes.items():
        if key == "setting":
            if not isinstance(values, dict) or not values:
                raise SweepError(f"{path}: axes.setting must map setting names to overrides")
            for sname, overrides in values.items():
                _check_keys(path, f"axes.setting.{sname}", overrides or {}, AXIS_FIELDS)
                values[sname] = overrides or {}
        elif key == "fold" and values == "all":
            continue
        elif key == "seed" and isinstance(values, int) and values > 0:
            continue
        elif not isinstance(values, list) or not values:
            raise SweepError(
                f"{path}: axes.{key} must be a non-empty list"
                + (" or 'all'" if key == "fold" else " or a count" if key == "seed" else "")
            )
    resources = {"cpu": 1, "gpu": 0, **(raw.get("resources") or {})}
    _check_keys(path, "resources", resources, RESOURCE_KEYS)
    if not (isinstance(resources["cpu"], (int, float)) and resources["cpu"] > 0 and 0 <= resources["gpu"]):
        raise SweepError(f"{path}: resources.cpu must be > 0 and resources.gpu >= 0")
    synthetic = raw.get("synthetic")
    if synthetic is not None:
        _check_keys(path, "synthetic", synthetic, SYNTH_KEYS)
    max_failures = raw.get("max_failures", 2)
    if not isinstance(max_failures, int) or max_failures < 0:
        raise SweepError(f"{path}: max_failures must be an integer >= 0")
    search = parse_search(path, raw.get("search"))
    sweep = Sweep(
        str(name), path, raw.get("description", ""), defaults, axes, resources, max_failures, synthetic, search
    )
    if data_root is not None:
        check_variants(sweep, sweep.trials(data_root))  # validates every value before anything runs
    return sweep


def variant_keys(sweep: Sweep) -> list[tuple[str, str]]:
    """(key, value) for every place the sweep file names a variant."""
    out = [("defaults.variant", sweep.defaults["variant"])] if "variant" in sweep.defaults else []
    out += [("axes.variant", v) for v in sweep.axes.get("variant", [])]
    settings = sweep.axes.get("setting", {})
    out += [(f"axes.setting.{n}.variant", o["variant"]) for n, o in settings.items() if "variant" in o]
    return out


def check_variants(sweep: Sweep, trials: list[Trial]) -> None:
    """Every researcher's variant (model.plugins) imported, built at each input shape its trials
    use and held to the forward contract, before any trial starts."""
    from ..model import plugins

    for key, value in variant_keys(sweep):
        if not isinstance(value, str) or value in VARIANTS:
            continue
        try:
            plugins.resolve(value)
        except plugins.VariantError as e:
            raise SweepError(f"{sweep.path}: {key}: {value}: {e}") from e
        builds = {
            (t.config.channels, t.config.resolution, t.config.variant_options)
            for t in trials
            if t.config.variant == value
        }
        for channels, resolution, options in sorted(builds):
            try:
                model = plugins.build(value, channels, resolution, **(json.loads(options) if options else {}))
                plugins.check_contract(model, channels, resolution)
            except Exception as e:  # noqa: BLE001 - a researcher's code: whatever it raises, named
                said = e if isinstance(e, plugins.VariantError) else f"{type(e).__name__}: {e}"
                raise SweepError(
                    f"{sweep.path}: {key}: {value}: {said} (built for {channels} channels at {resolution} px"
                    f"{f', options {options}' if options else ''})"
                ) from e


GRIDS = Path(__file__).resolve().parent / "grids"  # the shipped sweeps (package data; ./sweeps in a checkout)


def resolve_sweep_path(grid_or_path: str, sweeps_dir: Path | None = None) -> Path:
    """`--grid NAME` -> NAME.yaml in `sweeps_dir`, ./sweeps or the shipped grids (installed with the
    package, so it works from any directory); a path works too."""
    p = Path(grid_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    for base in filter(None, (sweeps_dir, Path("sweeps"), GRIDS)):
        if (base / f"{grid_or_path}.yaml").is_file():
            return base / f"{grid_or_path}.yaml"
    shipped = ", ".join(sorted(g.stem for g in GRIDS.glob("*.yaml")))
    raise SweepError(f"no sweep named {grid_or_path!r} in ./sweeps or the shipped grids ({shipped})")
