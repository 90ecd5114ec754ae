"""Look-alike synthetic smile corpora in the four datasets' real layouts (`python -m rsnet.synth`)."""

from .corpus import SYNTHETIC_MANIFEST, generate_corpus
from .dynamics import DESIGNS, SmileDynamics, draw_dynamics
from .layouts import PLANS, SIZES, plan_corpus
from .render import ClipRenderer, ClipSpec

__all__ = [
    "DESIGNS",
    "PLANS",
    "SIZES",
    "ClipRenderer",
    "ClipSpec",
    "SmileDynamics",
    "draw_dynamics",
    "generate_corpus",
    "plan_corpus",
    "SYNTHETIC_MANIFEST",
]
