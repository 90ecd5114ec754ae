"""Process-wide settings, made once by the entry point that owns the process (the train command,
the Ray trainable, a benchmark), never by a library function: torch's thread count and glibc's
malloc thresholds. Results do not depend on them."""

from __future__ import annotations

import ctypes
import os

import torch


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks of up to 32 MiB for reuse instead of handing them
    back to the OS (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD). A CPU training step allocates
    activations of tens of MB; with glibc's defaults each is a fresh mmap whose pages fault in
    again (bench/train.py measures it). Off glibc it does nothing and returns False."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def configure_process(threads: int = 0) -> int:
    """torch threads (0: the CPUs this process may use) and malloc settings; returns the threads."""
    n = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    keep_freed_memory()
    return n
