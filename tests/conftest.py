"""Shared fixtures, built once per test run (and shared by `make test`'s pytest-xdist workers):
tiny synthetic corpora of all four layouts (each generated when a test first asks for it), one
preprocessing cache and one data root laid out as sweeps expect it, for the tests that train,
predict or run sweeps."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from filelock import FileLock
from helpers import EXAMPLE

from rsnet.synth import generate_corpus


class Corpora(dict):
    """{dataset: root} of tiny synthetic corpora (real layouts, real H.264/MPEG-4/BMP files),
    seed 0, under <base>/synthetic-tiny/<dataset>: where a sweep with `synthetic: {size: tiny,
    seed: 0}` and `--data-root <base>` finds them already made."""

    def __init__(self, base: Path):
        super().__init__()
        self.base = base

    def __missing__(self, dataset: str) -> Path:
        root = self.base / "synthetic-tiny" / dataset
        with FileLock(self.base / f".{dataset}.lock"):  # one pytest-xdist worker makes it
            generate_corpus(dataset, "tiny", root, seed=0, workers=2, progress=False)
        self[dataset] = root
        return root


def shared_dir(tmp_path_factory, name: str) -> Path:
    """A folder of this test run, the same for every pytest-xdist worker of it."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, above each worker's own
    path = base / name
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session", autouse=True)
def ray_temp_dir():
    """Every local Ray the tests start (in this process or in a sweep it runs) keeps its session
    folders under one short folder of this worker (Ray's socket paths stay under 107 bytes),
    removed afterwards, instead of leaving them in /tmp/ray. Slurm jobs' Ray uses its own."""
    path = tempfile.mkdtemp(prefix="rsnet-ray-")
    os.environ["RAY_TMPDIR"] = path
    yield path
    if "ray" in sys.modules:
        sys.modules["ray"].shutdown()  # a Ray this process started, before its folder goes
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def corpora(tmp_path_factory):
    return Corpora(shared_dir(tmp_path_factory, "data"))


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    """One preprocessing cache for the tests that only read from it (each store is built once,
    under a lock, and keyed by the corpus and the settings)."""
    return shared_dir(tmp_path_factory, "cache")


@pytest.fixture(scope="session")
def sweep_data(corpora):
    """--data-root for sweeps of the tiny synthetic UvA-NEMO corpus (tests/sweeps/tiny.yaml,
    the demo with --synthetic-size tiny): the corpus is made once, here."""
    corpora["uvanemo"]
    return corpora.base


@pytest.fixture(scope="session")
def tiny_trial(corpora, cache):
    """A short trial's TrialConfig on the tiny UvA-NEMO corpus and the shared cache; keywords
    (fold, seed, epochs, ...) complete it."""
    from rsnet.config import TrialConfig

    def make(**kw) -> TrialConfig:
        return TrialConfig(
            dataset="uvanemo", root=str(corpora["uvanemo"]), batch_size=8, lr=3e-3, threads=1, cache=str(cache), **kw
        )

    return make


@pytest.fixture
def shared(sweep_data, cache):
    """The session's data root and cache as keyword arguments of test_sweep.run / sweep_cmd."""
    return {"data": sweep_data, "cache": cache}


@pytest.fixture
def example_importable(monkeypatch):
    """The example plugin package (examples/rsnet_example) importable here and in the processes a
    test starts (PYTHONPATH, which a local Ray's workers inherit), as a researcher's own package."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(EXAMPLE), os.environ.get("PYTHONPATH")])))


def pytest_configure(config):
    """Each of `make test`'s two pytest-xdist workers gets one of the machine's two cores: torch
    in a worker uses one thread (as each trial of a sweep does; rsnet.runtime)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        from rsnet.runtime import configure_process

        configure_process(1)


def pytest_report_header(config):
    import torch

    return f"torch {torch.__version__}, CPU kernels: {torch.backends.cpu.get_cpu_capability()}"


# The files whose tests mostly wait on services (Slurm jobs, Ray sweeps) are dealt out first, the
# longest first, so the other worker runs the CPU-bound files beside them (`make test` passes
# --no-loadscope-reorder so that pytest-xdist keeps this order).
FIRST = ("test_slurm.py", "test_sweep.py", "test_sweep_faults.py", "test_search.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: each file's own order
