"""A sweep's `search` section: hyper-parameters tuned by nested subject-disjoint cross-validation.

    search:
      space: {lr: {loguniform: [1.0e-4, 1.0e-2]}, batch_size: {choice: [8, 16]}}
      algorithm: optuna      # Ray Tune's OptunaSearch (TPE), or random (Tune's random sampling)
      samples: 8             # configurations per outer fold and seed
      inner_folds: 3         # subject-disjoint folds of the outer fold's training subjects
      scheduler: asha        # Ray Tune's ASHA on the inner folds' mean validation accuracy; or none
      grace_period: 2        # ASHA: epochs every configuration runs before it may be stopped

Parsed and checked here, once; rsnet.sweep.nested runs it.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field

from ..config import TrialConfig, with_role

KEYS = {"space", "algorithm", "samples", "inner_folds", "scheduler", "grace_period", "seed"}
ALGORITHMS = ("optuna", "random")
SCHEDULERS = ("asha", "none")
DISTRIBUTIONS = {"loguniform": 2, "uniform": 2, "randint": 2, "choice": None}
SEARCHABLE = set(with_role("method")) - {"epochs", "tuned"}  # how the model is built, fed and trained
PATH_FIELDS = set(with_role("path"))
METRIC = "inner_accuracy"  # the mean over inner folds of the validation accuracy, each epoch


@dataclass(frozen=True)
class Search:
    space: dict = field(default_factory=dict)  # field -> {distribution: arguments}
    algorithm: str = "optuna"
    samples: int = 8
    inner_folds: int = 3
    scheduler: str = "asha"
    grace_period: int = 1
    seed: int = 0  # the searchers' seed: the same file samples the same configurations

    def tune_space(self) -> dict:
        """Ray Tune's search space of the file's distributions."""
        from ray import tune

        make = {"loguniform": tune.loguniform, "uniform": tune.uniform, "randint": tune.randint}
        out = {}
        for name, dist in self.space.items():
            ((kind, args),) = dist.items()
            out[name] = tune.choice(list(args)) if kind == "choice" else make[kind](*args)
        return out

    def searcher_seed(self, outer: TrialConfig) -> int:
        """The searchers' seed for an outer trial: from `seed` and what the trial is (its data,
        fold, seed and method), not where its files lie, so that each outer fold and seed draws
        its own configurations and the same file draws the same ones on any cluster."""
        what = {k: v for k, v in outer.identity().items() if k not in PATH_FIELDS}
        return zlib.crc32(json.dumps([self.seed, what], sort_keys=True).encode())

    def searcher(self, outer: TrialConfig):
        """Ray Tune's searcher for an outer trial: OptunaSearch (TPE) or Tune's random sampling,
        seeded by searcher_seed."""
        seed = self.searcher_seed(outer)
        if self.algorithm == "random":
            from ray.tune.search.basic_variant import BasicVariantGenerator

            return BasicVariantGenerator(random_state=seed)
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per study and trial
        return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed))

    def scheduler_for(self, epochs: int):
        """Ray Tune's ASHA over epochs (or Tune's FIFO: every configuration to its last epoch)."""
        from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

        if self.scheduler == "none":
            return FIFOScheduler()
        return ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=min(self.grace_period, epochs))

    def identity(self) -> str:
        """The search as one text (a tuned trial's `tuned` field): the report reads its space."""
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        """One line for the report and the trial: what was searched, how."""
        return (
            f"{self.algorithm} x{self.samples}, {self.inner_folds} inner folds, scheduler {self.scheduler}: "
            + ", ".join(f"{k} {next(iter(v))} {list(next(iter(v.values())))}" for k, v in sorted(self.space.items()))
        )


def parse_search(path, raw) -> Search | None:
    """The sweep file's `search` section, checked: every error names the file and the key."""
    from .spec import SweepError

    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: search must be a mapping")
    if unknown := sorted(set(raw) - KEYS):
        raise SweepError(f"{path}: unknown key search.{unknown[0]}; valid: {', '.join(sorted(KEYS))}")
    space = raw.get("space")
    if not isinstance(space, dict) or not space:
        raise SweepError(
            f"{path}: search.space must map fields to distributions, e.g. lr: {{loguniform: [1e-4, 1e-2]}}"
        )
    for name, dist in space.items():
        where = f"search.space.{name}"
        if name not in SEARCHABLE:
            raise SweepError(f"{path}: {where}: not a searchable field; valid: {', '.join(sorted(SEARCHABLE))}")
        if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
            raise SweepError(f"{path}: {where}: one of {', '.join(DISTRIBUTIONS)} with its arguments")
        ((kind, args),) = dist.items()
        want = DISTRIBUTIONS[kind]
        if not isinstance(args, list) or not args or (want and len(args) != want):
            raise SweepError(f"{path}: {where}.{kind}: a list of {want or 'one or more'} values")
        if kind != "choice" and not args[0] < args[1]:
            raise SweepError(f"{path}: {where}.{kind}: [low, high] with low < high")
        for value in args:  # every value a trial could get is one TrialConfig accepts
            try:
                TrialConfig(**{name: value}).validate()
            except (TypeError, ValueError) as e:
                raise SweepError(f"{path}: {where}.{kind}: {value!r}: {e}") from e
    search = Search(**{k: v for k, v in raw.items() if k != "space"}, space=space)
    if search.algorithm not in ALGORITHMS:
        raise SweepError(f"{path}: search.algorithm: {search.algorithm!r}; valid: {', '.join(ALGORITHMS)}")
    if search.scheduler not in SCHEDULERS:
        raise SweepError(f"{path}: search.scheduler: {search.scheduler!r}; valid: {', '.join(SCHEDULERS)}")
    for key, low in (("samples", 1), ("inner_folds", 2), ("grace_period", 1)):
        if not isinstance(getattr(search, key), int) or getattr(search, key) < low:
            raise SweepError(f"{path}: search.{key}: an integer >= {low}")
    return search
