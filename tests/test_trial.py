"""One trial end to end: outputs, resume after a kill, determinism, bad inputs."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from rsnet.checkpoint import read_checkpoint
from rsnet.config import SETTABLE_FIELDS, TrialConfig
from rsnet.trial import TrialError, run_trial

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tiny_trial):
    return tiny_trial(fold=2, seed=1, epochs=4, checkpoint_every=2)


@pytest.fixture(scope="module")
def finished(base, tmp_path_factory):
    out = tmp_path_factory.mktemp("trial")
    return out, run_trial(base, out)


def test_outputs_present_and_consistent(finished, base):
    out, result = finished
    for name in ("config.json", "metrics.jsonl", "predictions.csv", "result.json", "checkpoint.pt"):
        assert (out / name).is_file(), name
    assert TrialConfig.from_dict(json.loads((out / "config.json").read_text())) == base
    pred = pd.read_csv(out / "predictions.csv", dtype={"subject": str})
    assert list(pred.columns) == ["video", "subject", "label", "score", "predicted"]
    assert len(pred) == result["test_videos"] > 0
    assert result["accuracy"] == pytest.approx((pred.label == pred.predicted).mean())
    assert ((pred.score > 0.5).astype(int) == pred.predicted).all()
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    assert result["final_epoch_accuracy"] == metrics[-1]["test_acc"] == result["accuracy"]
    assert result["optimistic_accuracy"] == max(m["test_acc"] for m in metrics)
    assert result["synthetic"] and result["parameters"] == 5273 and result["config_hash"] == base.hash()
    # the test fold's subjects never trained
    from rsnet.protocols import uvanemo_table

    folds = uvanemo_table().set_index("video").fold
    assert set(folds[pred.video]) == {2}
    ckpt = read_checkpoint(out / "checkpoint.pt")
    assert ckpt["state"]["epoch"] == 4 and ckpt["config"] == base.to_dict()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(out))
    ea.Reload()
    assert [e.step for e in ea.Scalars("train_loss")] == [1, 2, 3, 4]
    assert [e.value for e in ea.Scalars("test_acc")] == pytest.approx([m["test_acc"] for m in metrics])


def test_finished_trial_is_not_rerun(finished, base):
    out, result = finished
    before = (out / "result.json").stat().st_mtime_ns
    assert run_trial(base, out) == result
    assert (out / "result.json").stat().st_mtime_ns == before
    with pytest.raises(TrialError, match="holds another trial"):
        run_trial(base.replace(seed=2), out)


def test_same_seed_same_predictions(finished, base, tmp_path):
    out, _ = finished
    run_trial(base, tmp_path)
    a = pd.read_csv(out / "predictions.csv")
    b = pd.read_csv(tmp_path / "predictions.csv")
    pd.testing.assert_frame_equal(a, b)


def test_killed_trial_resumes_to_the_uninterrupted_result(finished, base, tmp_path):
    out, result = finished
    cfg = base
    args = [sys.executable, "-m", "rsnet.train", "--out", str(tmp_path)]
    for k, v in cfg.to_dict().items():
        flag = f"--{k.replace('_', '-')}"
        if isinstance(v, bool):
            args.append(flag if v else f"--no-{k.replace('_', '-')}")
        elif v is not None:
            args += [flag, str(v)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (
        (tmp_path / "checkpoint.pt").exists() and len((tmp_path / "metrics.jsonl").read_text().splitlines()) >= 3
    ):
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "result.json").exists()
    assert read_checkpoint(tmp_path / "checkpoint.pt")["state"]["epoch"] == 2
    resumed = run_trial(cfg, tmp_path)
    assert resumed["accuracy"] == result["accuracy"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "predictions.csv"), pd.read_csv(out / "predictions.csv"))
    drop = ["train_seconds", "seconds"]

    def read(p):
        return pd.read_json(p / "metrics.jsonl", lines=True).drop(columns=drop)

    pd.testing.assert_frame_equal(read(tmp_path), read(out))


def test_validation_split_selects_the_epoch(base, tmp_path):
    r = run_trial(base.replace(val_fraction=0.3, epochs=3), tmp_path)
    metrics = pd.read_json(tmp_path / "metrics.jsonl", lines=True)
    assert r["val_videos"] > 0 and "validation" in r["selection"]
    assert r["selected_epoch"] == int(metrics.val_acc.idxmax()) + 1
    assert r["accuracy"] == pytest.approx(metrics.test_acc[r["selected_epoch"] - 1])


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("variant", "resnet50", "valid: full, no_tsa"),
        ("dataset", "casme", "valid: uvanemo, bbc"),
        ("fold", 11, r"valid: \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]"),
        ("loss_weighting", "focal", "valid: balanced"),
        ("fpn_dropout", 1.5, r"valid: \[0, 1\)"),
    ],
)
def test_invalid_settings_list_the_valid_ones(base, tmp_path, field, value, match):
    with pytest.raises(ValueError, match=match):
        run_trial(base.replace(**{field: value}), tmp_path)


def test_trials_from_before_the_fpn_dropout_option_keep_their_names(base):
    saved = base.to_dict()
    del saved["fpn_dropout"]  # a config.json written before the option existed: the authors' 0.2
    old = TrialConfig.from_saved(saved)
    assert old.fpn_dropout == 0.2 and "fpn_dropout" not in old.identity()
    assert old.replace(fpn_dropout=0.0).hash() != old.hash()


def test_nan_loss_fails_with_a_message_and_keeps_outputs(base, tmp_path):
    with pytest.raises(TrialError, match="training loss is nan"):
        run_trial(base.replace(l2_penalty=float("nan")), tmp_path)
    assert json.loads((tmp_path / "failed.json").read_text())["epoch"] == 1
    assert (tmp_path / "config.json").exists() and not (tmp_path / "result.json").exists()


def test_cli_rejects_unknown_variant(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "rsnet.train", "--out", str(tmp_path), "--root", str(tmp_path), "--variant", "vgg"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "valid: full, no_tsa" in p.stderr


def test_cross_mmi_target_reads_the_mmi_selection(base, corpora, tmp_path):
    """cross:mmi tests on the sessions of the trial's MMI selection, not on the target's default file."""
    from rsnet.trial import load_data

    full = pd.read_csv(corpora["mmi"] / "mmi_selection.csv")
    subset = full.groupby("label").head(2)  # 2 posed, 2 spontaneous sessions
    subset.to_csv(tmp_path / "four.csv", index=False)
    cfg = base.replace(
        split="cross:mmi", fold=1, target_root=str(corpora["mmi"]), mmi_selection=str(tmp_path / "four.csv")
    )
    _, _, test, facts = load_data(cfg)
    assert facts["test_dataset"] == "mmi" and facts["test_videos"] == len(test) == 4 < len(full)
    assert sorted(test.table.id.str.split("/").str[0].astype(int)) == sorted(subset.session)


def test_tensorboard_hparams_hold_the_settings_and_final_accuracies(finished, base):
    """Read back with TensorBoard's own event reader and its HParams plugin's protobufs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    out, result = finished
    events = EventAccumulator(str(out))
    events.Reload()
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    start = [plugin_data_pb2.HParamsPluginData.FromString(c).session_start_info for c in content.values()]
    start = [s for s in start if s.hparams]
    assert len(start) == 1
    hp = start[0].hparams
    assert hp["variant"].string_value == base.variant and hp["lr"].number_value == pytest.approx(base.lr)
    assert (hp["fold"].number_value, hp["seed"].number_value, hp["forget_bias"].string_value) == (2, 1, "none")
    assert set(hp) == set(SETTABLE_FIELDS)  # no paths, nothing of the runtime
    scalars = events.Tags()["scalars"]
    assert {"train_loss", "test_acc"} <= set(scalars)  # the per-epoch curves stay
    for k in ("accuracy", "final_epoch_accuracy", "optimistic_accuracy"):
        assert events.Scalars(f"hparam/{k}")[-1].value == pytest.approx(result[k])
