"""Atomic writes: a file or directory appears under its name whole, or not at all.

Everything rsnet writes that another process may read while it is written (results, checkpoints,
tables, cache stores, synthetic clips) goes through `atomic_path`: the content is written to a
temporary name in the same directory (so the same file system) and renamed onto the final name;
if writing fails, the temporary is removed and the final name keeps what it held.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix, for writers that read the format from it);
    renamed onto `path` when the block ends, removed if it raises."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1))
