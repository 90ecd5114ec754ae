"""What the driver shows and keeps while a sweep runs, and how it stops.

- `Progress`: one bar (trials ended of all, finished, failed, running, ETA) on a terminal, one
  line per ended trial with the same counts wherever the output goes (a Slurm log), and
  trials.csv kept current from the trial that changed (`table.LiveTable`).
- `ThisRun`: Tune pickles a run's callbacks into its experiment and, when the experiment is
  restored, calls the pickled ones. This container pickles to nothing and forwards every call
  to the callbacks of the run in this process, so a resumed sweep reports to its own progress.
- `Stop`: Ctrl-C (SIGINT) or SIGTERM ends the sweep the way Tune's own interrupt does (its
  SIGUSR1 handler: the trials stop, the experiment's state is saved, a rerun continues it); a
  second signal stops at once.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from ray import tune
from ray.tune.callback import CallbackList
from tqdm import tqdm

from ..atomic import write_json_atomic
from .table import LiveTable


class ThisRun(CallbackList):
    """The callbacks of the sweep this process runs (`ThisRun.current`, set by run_on_ray)."""

    current: list = []

    def __init__(self):  # the list is looked up at every call, not kept
        pass

    @property
    def _callbacks(self) -> list:
        return ThisRun.current

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        pass


class Progress(tune.Callback):
    """Counts, bar, lines and the live table of one run of a sweep (see the module's docstring)."""

    def __init__(self, sweep_dir: Path, trials, bar: bool | None = None):
        self.sweep_dir, self.trials, self.bar_wanted = Path(sweep_dir), trials, bar
        self.by_name = {t.name: t for t in trials}
        self.total = len(trials)
        self.running: set[str] = set()
        self.table = self.bar = None

    def __setstate__(self, state):
        """One pickled with an experiment by an earlier rsnet (before ThisRun): does nothing."""
        self.__class__ = tune.Callback

    def setup(self, **info):
        """At the run's start (a restored one too): the table read once, the bar past what finished.
        Tune calls it again for each part of a sweep (runner.parts): only the first counts."""
        if self.table is not None:
            return
        self.table = LiveTable(self.sweep_dir, self.trials)
        self.done = {t.name for t in self.trials if self.table.rows[t.name].get("status") == "finished"}
        self.finished = self.before = len(self.done)
        self.failed, self.t0 = 0, time.time()
        self.bar = tqdm(
            total=self.total,
            initial=self.before,
            desc="sweep",
            unit="trial",
            file=sys.stderr,
            disable=None if self.bar_wanted is None else not self.bar_wanted,
            dynamic_ncols=True,
        )
        self._postfix()

    def _postfix(self) -> None:
        self.bar.set_postfix_str(f"{self.finished} finished, {self.failed} failed, {len(self.running)} running")

    def _eta(self) -> str:
        ended = self.finished + self.failed - self.before
        left = self.total - self.finished - self.failed
        return "" if not ended or not left else f", ETA {(time.time() - self.t0) / ended * left / 60:.1f} min"

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(trial.trial_id)
        self._postfix()

    def on_trial_recover(self, iteration, trials, trial, **info):  # failed, to be retried
        self.running.discard(trial.trial_id)
        self._postfix()
        try:
            said = Path(trial.error_file).read_text(errors="replace").strip().splitlines()[-1][:200]
        except (OSError, TypeError, IndexError):  # no error file (yet)
            said = "its worker ended"
        tqdm.write(f"[retry] {trial.config['trial']}: {said}; Tune retries it from its checkpoint", file=sys.stdout)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" in result:
            self.table.epoch(trial.config["trial"], result["epoch"])

    def _ended(self, trial, what: str) -> None:
        t = self.by_name[trial.config["trial"]]
        row = self.table.update(t.name, t.setting, t.config.to_dict())
        tail = f"accuracy {row['accuracy']:.4f}" if what == "finished" and row.get("status") == "finished" else what
        self.running.discard(trial.trial_id)
        self._postfix()
        self.bar.update(1)
        tqdm.write(
            f"[{self.finished + self.failed}/{self.total}] {t.name}: {tail} "
            f"({(time.time() - self.t0) / 60:.1f} min; {self.finished} finished, {self.failed} failed, "
            f"{len(self.running)} running{self._eta()})",
            file=sys.stdout,
        )
        sys.stdout.flush()

    def on_trial_complete(self, iteration, trials, trial, **info):
        if trial.config["trial"] in self.done:  # finished before a driver was killed, after Tune's last snapshot
            self.running.discard(trial.trial_id)
            return
        self.done.add(trial.config["trial"])
        self.finished += 1
        self._ended(trial, "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        out = self.sweep_dir / "trials" / trial.config["trial"]
        if not (out / "failed.json").exists():  # failed in Tune, outside the trainable: say so there
            error = f"Ray Tune: {trial.get_error() or 'see ' + str(trial.error_file)}"
            write_json_atomic(out / "failed.json", {"error": error.strip()[-2000:], "time": time.time()})
        self._ended(trial, "FAILED (error in trials.csv)")

    def on_experiment_end(self, trials, **info):  # a part of the sweep (runner.parts) ended
        self.table.flush()

    def close(self):
        """The table written and the bar closed (also after an interrupted run)."""
        if self.bar is not None:
            self.running.clear()
            self._postfix()
            self.bar.close()
            self.table.flush()


DUPLICATE_S = 3.0


class Stop:
    """SIGINT and SIGTERM while a sweep runs: the first asks Tune to stop as its own interrupt does
    (SIGUSR1, handled inside Tuner.fit: trials stop, the state is saved), or, before Tune runs,
    raises KeyboardInterrupt; a second stops at once (KeyboardInterrupt), unless it comes within
    DUPLICATE_S seconds of the first (one stop sent twice)."""

    signal: str | None = None
    at = 0.0  # when it came

    @classmethod
    def install(cls) -> None:
        """Ours for SIGINT and SIGTERM from now on, for a run not stopped yet (one process may
        run several: bench/sweep_scale.py stops one and restores it)."""
        cls.signal = None
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours takes SIGINT; Tune keeps SIGUSR1
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, cls._handle)

    @classmethod
    def _handle(cls, signum, frame) -> None:
        if cls.signal is not None and time.monotonic() - cls.at < DUPLICATE_S:
            return  # one stop sent twice at once (Slurm's --full to every process, and the job's launcher)
        again, cls.signal, cls.at = cls.signal is not None, signal.Signals(signum).name, time.monotonic()
        tune_listens = callable(signal.getsignal(signal.SIGUSR1))  # Tune's interrupt, while it runs
        if again or not tune_listens:
            raise KeyboardInterrupt
        print(f"sweep: {cls.signal}: stopping the trials and saving the sweep's state", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGUSR1)
