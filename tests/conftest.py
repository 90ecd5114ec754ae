"""Shared fixtures, built once per test session: tiny synthetic corpora of all four layouts
(each generated when a test first asks for it), one preprocessing cache and one data root laid
out as sweeps expect it, for the tests that train, predict or run sweeps."""
from pathlib import Path

import pytest

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
        generate_corpus(dataset, "tiny", root, seed=0, workers=2, progress=False)
        self[dataset] = root
        return root


@pytest.fixture(scope="session")
def corpora(tmp_path_factory):
    return Corpora(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    """One preprocessing cache for the tests that only read from it (each store is built once,
    under a lock, and keyed by the corpus and the settings)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def sweep_data(corpora):
    """--data-root for sweeps of the tiny synthetic UvA-NEMO corpus (tests/sweeps/tiny.yaml,
    the demo with --synthetic-size tiny): the corpus is made once, here."""
    corpora["uvanemo"]
    return corpora.base


def pytest_report_header(config):
    import torch

    return f"torch {torch.__version__}, CPU kernels: {torch.backends.cpu.get_cpu_capability()}"
