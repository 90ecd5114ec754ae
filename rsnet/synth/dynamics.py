"""Smile dynamics: when the lips and eyes move, drawn per clip from its class.

Two designs:

``order`` (default). The smile literature and our feasibility prototypes agree that the
*order* of a smile's phases is a cue a temporal network can learn from short clips:
spontaneous = slow onset (1.2-2.0 s) then fast offset (0.2-0.6 s); posed = the same curve
reversed in time (fast onset, slow offset). Eyes narrow in step with the lips for both
classes, amplitudes come from one distribution, lead-in, apex and tail are short
(0.2-0.6 s each). So every face shape occurs in both classes: no single frame tells the class,
and a time-shuffled clip carries no signal.

``literature``. After Dibeklioglu et al. (ECCV 2012) and Schmidt et al. (2006): posed smiles
have a faster onset and offset, a shorter apex, more left-right asymmetry and little or late
eye involvement (AU6); spontaneous ones a slower, smoother onset with the eyes in step.
Clips are longer (1.8-14.2 s as in UvA-NEMO). Asymmetry and eye involvement make the apex
frame partly informative here, as in real data.

Difficulty: each clip draws its dynamics from the *other* class with probability
``difficulty / 2``, so the best possible accuracy is ``1 - difficulty / 2`` (default 0.1 -> 95 %).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DESIGNS = ("order", "literature")
DEFAULT_DIFFICULTY = 0.1


def ramp(x: np.ndarray) -> np.ndarray:
    """Smooth 0 -> 1 over x in [0, 1] (raised cosine), clamped outside."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


@dataclass
class SmileDynamics:
    lead: float  # s of neutral face before the onset
    onset: float  # s from neutral to apex
    apex: float  # s held at the apex
    offset: float  # s from apex back to neutral
    tail: float  # s of neutral face after the offset
    amplitude: float  # apex intensity in [0, 1]
    left: float  # relative strength of the left / right lip corner (asymmetry)
    right: float
    eye_gain: float  # eye narrowing (AU6) relative to the lips
    eye_delay: float  # s the eyes lag the lips
    apex_wobble: float  # relative dip of intensity during the apex (a "flatter" apex when 0)

    @property
    def duration(self) -> float:
        return self.lead + self.onset + self.apex + self.offset + self.tail

    def _curve(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        up = ramp((t - self.lead) / self.onset)
        t_off = self.lead + self.onset + self.apex
        down = 1.0 - ramp((t - t_off) / self.offset)
        s = np.where(t < t_off, up, down)
        in_apex = (t >= self.lead + self.onset) & (t < t_off)
        wobble = self.apex_wobble * np.sin(np.pi * (t - self.lead - self.onset) / max(self.apex, 1e-6))
        return self.amplitude * np.where(in_apex, 1.0 - wobble, s)

    def lips(self, t) -> np.ndarray:
        """Lip-corner intensity (AU12) at times t (s)."""
        return self._curve(t)

    def eyes(self, t) -> np.ndarray:
        """Eye narrowing / cheek raise intensity (AU6) at times t (s)."""
        return self.eye_gain * self._curve(np.asarray(t) - self.eye_delay)

    def to_dict(self) -> dict:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _order(rng: np.random.Generator, spontaneous: bool) -> SmileDynamics:
    slow, fast = _u(rng, 1.2, 2.0), _u(rng, 0.2, 0.6)
    return SmileDynamics(
        lead=_u(rng, 0.2, 0.6),
        onset=slow if spontaneous else fast,
        apex=_u(rng, 0.2, 0.6),
        offset=fast if spontaneous else slow,
        tail=_u(rng, 0.2, 0.6),
        amplitude=_u(rng, 0.7, 1.0),
        left=1.0,
        right=1.0,
        eye_gain=_u(rng, 0.6, 1.0),
        eye_delay=0.0,
        apex_wobble=0.0,
    )


def _literature(rng: np.random.Generator, spontaneous: bool) -> SmileDynamics:
    weak = _u(rng, 0.6, 0.85) if not spontaneous else _u(rng, 0.9, 1.0)
    left, right = (1.0, weak) if rng.random() < 0.5 else (weak, 1.0)
    if spontaneous:
        onset, apex, offset = _u(rng, 0.8, 1.6), _u(rng, 1.0, 3.0), _u(rng, 0.8, 1.6)
        eye_gain, eye_delay, wobble = _u(rng, 0.6, 1.0), 0.0, _u(rng, 0.05, 0.15)
    else:
        onset, apex, offset = _u(rng, 0.3, 0.7), _u(rng, 0.5, 1.5), _u(rng, 0.3, 0.7)
        eye_gain, eye_delay, wobble = _u(rng, 0.0, 0.3), _u(rng, 0.2, 0.6), 0.0
    return SmileDynamics(
        lead=_u(rng, 0.5, 3.0),
        onset=onset,
        apex=apex,
        offset=offset,
        tail=_u(rng, 0.5, 3.0),
        amplitude=_u(rng, 0.7, 1.0),
        left=left,
        right=right,
        eye_gain=eye_gain,
        eye_delay=eye_delay,
        apex_wobble=wobble,
    )


def draw_dynamics(
    rng: np.random.Generator, label: int, design: str = "order", difficulty: float = DEFAULT_DIFFICULTY
) -> tuple[SmileDynamics, int]:
    """Dynamics for a clip of class `label` (1 spontaneous, 0 posed).

    Returns the dynamics and the class they were drawn from (differs from `label` with
    probability difficulty / 2)."""
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; valid: {', '.join(DESIGNS)}")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    drawn_as = label if rng.random() >= difficulty / 2 else 1 - label
    make = _order if design == "order" else _literature
    return make(rng, bool(drawn_as)), drawn_as
