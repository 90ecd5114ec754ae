"""Shared fixtures: tiny synthetic corpora of all four layouts, generated once per test session."""
import pytest

from rsnet.synth import generate_corpus


@pytest.fixture(scope="session")
def corpora(tmp_path_factory):
    """{dataset: root} of tiny synthetic corpora (real layouts, real H.264/MPEG-4/BMP files)."""
    base = tmp_path_factory.mktemp("corpora")
    roots = {}
    for dataset in ("uvanemo", "bbc", "mmi", "spos"):
        generate_corpus(dataset, "tiny", base / dataset, seed=0, workers=2, progress=False)
        roots[dataset] = base / dataset
    return roots
