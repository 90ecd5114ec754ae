"""A researcher's own variant (rsnet.model.plugins): named by import path or registered by an
installed package, checked before a sweep runs, trained, saved, predicted with and reported.
The example package under examples/rsnet_example is the plugin."""

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
from helpers import REPO, TINY, tiny_variant
from torch import nn

from rsnet.model import plugins
from rsnet.sweep.spec import SweepError, load_sweep

MEAN = "rsnet_example.models:build_mean_frames"
BROKEN = "rsnet_example.models:build_broken_padding"


@pytest.fixture
def registered(tmp_path, monkeypatch, example_importable):
    """An installed distribution registering `mean_frames` (its dist-info on sys.path, as pip writes it)."""
    info = tmp_path / "site" / "rsnet_example-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rsnet-example\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[{plugins.GROUP}]\nmean_frames = {MEAN}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    plugins.registered.cache_clear()
    yield
    plugins.registered.cache_clear()


def test_a_builder_by_import_path_or_registered_name_keeps_the_contract(registered):
    for name in (MEAN, "mean_frames"):
        model = plugins.build(name, 3, 48)
        plugins.check_contract(model, 3, 48)
        assert "averaged over the video's frames" in plugins.describe(name)
    assert plugins.source("mean_frames") == {"builder": MEAN, "distribution": "rsnet-example", "version": "0.1.0"}
    assert plugins.source("full") is None
    from rsnet.config import TrialConfig
    from rsnet.explain import can_serve

    for method, lacks in (("cam", "per-frame `encoder` module"), ("tsne", "`embed(frames, lengths)` method")):
        said = f"explain {method}: the model of variant {MEAN} has no {lacks}"
        with pytest.raises(ValueError, match=re.escape(said)):
            can_serve(model, TrialConfig(variant=MEAN), method)


@pytest.mark.parametrize(
    "value, says",
    [
        (BROKEN, "the output changes with padding"),
        ("rsnet_example.models:nothing", "module 'rsnet_example.models' has no 'nothing'"),
        ("not_installed_pkg.models:build", "cannot import 'not_installed_pkg.models'"),
        ("rsnet_example.models:MeanOfFrames", "TypeError"),  # a class without the builder's keywords
        ("not_registered_name", "not valid; valid: full"),
    ],
)
def test_a_sweep_names_the_file_key_and_value_of_a_bad_plugin(tmp_path, example_importable, value, says):
    f = tiny_variant(tmp_path / "mine.yaml", ("no_tsa: {variant: no_tsa}", f"mine: {{variant: '{value}'}}"))
    with pytest.raises(SweepError) as e:
        load_sweep(f)
    msg = str(e.value)
    assert str(f) in msg and value in msg, msg
    assert ("axes.setting.mine.variant" if ":" in value else "config field variant") in msg, msg
    assert says in msg, msg


def test_the_shipped_variants_keep_the_contract_a_plugin_must():
    from rsnet.model import VARIANTS, build_model

    for v in VARIANTS:
        plugins.check_contract(build_model(v, 3, 48), 3, 48)


def test_a_zero_initialised_layer_does_not_hide_a_padding_leak(example_importable):
    model = plugins.build(BROKEN, 3, 48)
    nn.init.zeros_(model.head.weight)  # untrained, every video scores alike: padding or not
    with pytest.raises(plugins.VariantError, match="the output changes with padding"):
        plugins.check_contract(model, 3, 48)


def test_the_examples_variants_keep_the_contract(example_importable):
    for builder in (MEAN, "rsnet_example.models:build_motion_profile"):
        for channels, resolution in ((3, 48), (1, 24)):
            plugins.check_contract(plugins.build(builder, channels, resolution), channels, resolution)


@pytest.mark.slow
def test_a_plugin_trial_trains_predicts_and_reports_as_a_user_variant(tiny_trial, corpora, tmp_path, registered):
    from rsnet.trial import run_trial

    trial = tmp_path / "results" / "mine" / "trials" / "t1"
    run_trial(tiny_trial(fold=1, seed=0, epochs=2, variant="mean_frames"), trial)
    blob = __import__("torch").load(trial / "checkpoint.pt", weights_only=True)
    assert blob["variant_source"]["builder"] == MEAN
    pred = pd.read_csv(trial / "predictions.csv", dtype={"video": str})
    video = corpora["uvanemo"] / "videos" / f"{pred.video[0]}.mp4"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}  # the registering dist-info too
    cmd = [sys.executable, "-m", "rsnet.predict", str(video), "--checkpoint", str(trial), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["probability_spontaneous"] == pytest.approx(pred.score[0], abs=1e-5)
    # without the package: what to install (where this environment has not installed it itself)
    env["PYTHONPATH"] = ""
    if subprocess.run([sys.executable, "-c", "import rsnet_example"], env=env, capture_output=True).returncode:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        assert p.returncode == 2 and "install rsnet-example==0.1.0" in p.stderr and MEAN in p.stderr, p.stderr
    # the report: a cell labelled as a user variant, its Methods sentence from the builder
    (trial.parent.parent / "sweep.yaml").write_text(TINY.read_text())
    p = subprocess.run(
        [sys.executable, "-m", "rsnet.report", str(tmp_path / "results"), "--out", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
        cwd=REPO,
    )
    assert p.returncode == 0, p.stderr
    index = (tmp_path / "report" / "index.md").read_text()
    assert "**user variant `mean_frames`**: Per-frame CNN features averaged over the video's frames" in index


def test_a_builders_options_come_from_the_sweep_file_and_are_checked_there(tmp_path, example_importable):
    wide = tiny_variant(
        tmp_path / "wide.yaml",
        ("no_tsa: {variant: no_tsa}", f"narrow: {{variant: '{MEAN}', variant_options: {{width: 4}}}}"),
    )
    trials = [t for t in load_sweep(wide).trials("/") if t.setting == "narrow"]
    assert {t.config.variant_options for t in trials} == {'{"width": 4}'}
    size = [sum(p.numel() for p in t.config.model().parameters()) for t in trials[:1]]
    assert size[0] < sum(p.numel() for p in plugins.build(MEAN, 3, 48).parameters())
    bad = tiny_variant(
        tmp_path / "bad.yaml",
        ("no_tsa: {variant: no_tsa}", f"narrow: {{variant: '{MEAN}', variant_options: {{depth: 4}}}}"),
    )
    with pytest.raises(SweepError, match=r"bad.yaml: axes.setting.narrow.variant: .*TypeError.*'depth'.*options"):
        load_sweep(bad)
    shipped = tiny_variant(
        tmp_path / "shipped.yaml", ("no_tsa: {variant: no_tsa}", "no_tsa: {variant_options: {w: 1}}")
    )
    with pytest.raises(SweepError, match=r"shipped.yaml: config field variant_options: .*none for the shipped variant"):
        load_sweep(shipped)
