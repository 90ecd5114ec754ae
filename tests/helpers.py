"""What several test files use: the checkout's paths, the sweep command, the tiny test sweep and
its variants, and the processes and sockets a test inspects."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "sweeps" / "tiny.yaml"
EXAMPLE = REPO / "examples" / "rsnet_example" / "src"  # the example plugin package's source


def sweep_cmd(*args, tmp, data=None, cache=None):
    """The sweep CLI with results under `tmp`; data and cache default to `tmp` too, the tests
    that train pass the session's tiny corpus and cache (conftest.py) instead."""
    return [
        sys.executable,
        "-m",
        "rsnet.sweep",
        *map(str, args),
        "--data-root",
        str(data or tmp / "data"),
        "--results",
        str(tmp / "results"),
        "--cache",
        str(cache or tmp / "cache"),
    ]


def run(*args, tmp, data=None, cache=None, timeout=600):
    """The sweep CLI run to its end (see sweep_cmd), from the checkout."""
    return subprocess.run(
        sweep_cmd(*args, tmp=tmp, data=data, cache=cache), capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def tiny_variant(path: Path, *replacements: tuple[str, str]) -> Path:
    """tests/sweeps/tiny.yaml with its text replaced as given, written to `path`."""
    text = TINY.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


def tiny_one(path: Path, epochs: int, *replacements: tuple[str, str]) -> Path:
    """The tiny sweep cut to one outer trial (fold 2, setting full) of `epochs` epochs."""
    return tiny_variant(
        path,
        ("fold: [1, 2]", "fold: [2]"),
        ("epochs: 3", f"epochs: {epochs}"),
        ("    no_tsa: {variant: no_tsa}\n", ""),
        *replacements,
    )


def parents() -> dict[int, int]:
    """Every process's parent, from /proc."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return parent


def sockets(ss: str) -> list[tuple[str, str, int]]:
    """(local address, process name, pid) of each socket in `ss -ltnpH` output."""
    return [
        (line.split()[3], name, int(pid))
        for line in ss.splitlines()
        for name, pid in re.findall(r'\("([^"]+)",pid=(\d+)', line)
    ]


def listeners(root: int) -> set[tuple[str, str]]:
    """(local address, process name) of each listening TCP socket of a process and its descendants."""
    parent = parents()
    tree, grew = {root}, True
    while grew:
        new = {pid for pid, ppid in parent.items() if ppid in tree} - tree
        tree, grew = tree | new, bool(new)
    ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    return {(addr, name) for addr, name, pid in sockets(ss) if pid in tree}


def finished_inner(search: Path) -> dict:
    """{inner trial folder: its result.json's mtime} of a sweep's search folder's finished inner
    trials."""
    return {p.parent: p.stat().st_mtime_ns for p in search.glob("*/configs/*/inner*/result.json")}
