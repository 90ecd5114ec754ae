"""Process-wide settings, made once by the entry point that owns the process (the train command,
the Ray trainable, a benchmark), never by a library function. Results do not depend on them."""

from __future__ import annotations

import os

import torch


def configure_process(threads: int = 0) -> int:
    """torch's thread count (0: the CPUs this process may use); returns it."""
    n = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    return n
