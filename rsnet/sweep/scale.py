"""Ray Tune at the paper's scale (4,590 trials in one sweep): a cost of Tune's that grew with the
number of trials, measured by bench/sweep_scale.py, and what rsnet passes Tune instead.

(The other such cost is in runner.run_on_ray: Tune deep-copies a grid's whole spec for every trial
it creates, so the grid holds only the trials' names and tune.with_parameters their specs.)"""

from __future__ import annotations

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler


class InOrder(FIFOScheduler):
    """Tune's first-in-first-out scheduler, but without rereading the trials that have ended.
    FIFOScheduler looks through every trial from the first for one to start, at every step of
    Tune's loop (every epoch any trial reports), and the ended trials stay at the front: the
    driver's cost per trial grew with the trials that had ended. An ended trial does not start
    again within a run, so the front of the list that has ended is skipped, and remembered only
    in this process (a restored sweep may resume them).

    Trials whose files say they finished (`finished`, set by the driver before it runs) are ended
    as HyperBand ends trials, never started: in a restored sweep, those that finished after Tune's
    last snapshot of the experiment (the driver killed, the head lost); in a new experiment of an
    edited sweep file, those an earlier one finished."""

    finished: frozenset = frozenset()  # names (Tune's config["trial"]) of finished trials not yet ended

    def __init__(self):
        super().__init__()
        self._ended = 0

    def __getstate__(self):
        return {**self.__dict__, "_ended": 0}

    def choose_trial_to_run(self, tune_controller):
        trials = tune_controller.get_trials()
        while self._ended < len(trials) and trials[self._ended].status == Trial.TERMINATED:
            self._ended += 1
        rest = trials[self._ended :]
        if InOrder.finished:  # until each has come (a new experiment's trials come as Tune makes them)
            for t in trials:
                if (name := t.config.get("trial")) in InOrder.finished:
                    if t.status in (Trial.PENDING, Trial.PAUSED):
                        tune_controller.stop_trial(t)
                    InOrder.finished = InOrder.finished - {name}  # ended already: Tune's snapshot knew
        return next((t for t in rest if t.status == Trial.PENDING), None) or next(
            (t for t in rest if t.status == Trial.PAUSED), None
        )
