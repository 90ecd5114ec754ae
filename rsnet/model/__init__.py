"""RealSmileNet and its variants. Public API: `build_model`, `VARIANTS`, `SmileNet`."""

from .network import SmileNet, count_parameters, lengths_mask
from .variants import VARIANTS, build_model

__all__ = ["SmileNet", "VARIANTS", "build_model", "count_parameters", "lengths_mask"]
