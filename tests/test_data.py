"""Adapters, protocols and the preprocessing cache, on real files of all four layouts."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rsnet.data import DatasetError, PrepConfig, align, assign_folds, folds_for, list_videos, load_or_build, make_split
from rsnet.data.adapters import spos_subject
from rsnet.data.box import track_boxes
from rsnet.data.cache import LocalRunner, SubmititRunner
from rsnet.data.faces import detect_faces
from rsnet.data.preprocess import PreprocessError, cut_crops, face_track, read_sampled_frames, sample_indices
from rsnet.protocols import uvanemo_table
from rsnet.synth import ClipRenderer, ClipSpec
from rsnet.synth.render import write_video


@pytest.mark.parametrize("dataset", ["uvanemo", "bbc", "mmi", "spos"])
def test_adapters_list_every_video_with_label_and_subject(corpora, dataset):
    root = corpora[dataset]
    truth = json.loads((root / "SYNTHETIC.json").read_text())["clips"]
    v = list_videos(dataset, root)
    assert len(v) == len(truth)
    for r in v.itertuples():
        t = truth[str(Path(r.path).relative_to(root))]
        assert (r.label, r.subject) == (t["label"], t["subject"])
    assert set(v.kind) == {"images" if dataset == "spos" else "video"}


def test_uvanemo_attributes_and_age_rule(corpora):
    v = list_videos("uvanemo", corpora["uvanemo"])
    table = uvanemo_table().set_index("video")
    assert (v.gender.to_numpy() == table.loc[v.id].gender.to_numpy()).all()
    assert ((v.age < 18) == (v.age_group == "young")).all()
    per_subject = uvanemo_table().groupby("subject").age.first()
    assert ((per_subject < 18).sum(), (per_subject >= 18).sum()) == (149, 251)  # the paper's counts


def test_sampling_by_time_is_rate_independent(tmp_path):
    assert len(sample_indices(500, 50.0, 5.0)) == 50 == len(sample_indices(290, 29.0, 5.0))
    for fps in (50, 29):
        n = 10 * fps
        frames = (np.full((32, 32, 3), 1, np.uint8) * np.uint8(i * 250 // n) for i in range(n))
        write_video(tmp_path / f"v{fps}.mp4", frames, fps, 32, 32)
        got, native, count = read_sampled_frames(str(tmp_path / f"v{fps}.mp4"), "video", float("nan"), 5.0)
        assert (len(got), native, count) == (50, fps, n)
        # frame k shows time k/5 s: brightness ~ 25 * t
        assert np.allclose(got.mean(axis=(1, 2, 3)), (np.arange(50) * fps // 5) * 250 // n, atol=3)
        # the authors' loader: every 5th frame, whatever the rate (10 fps at 50 fps, 5.8 fps at 29)
        got, _, _ = read_sampled_frames(str(tmp_path / f"v{fps}.mp4"), "video", float("nan"), 5.0, stride=5)
        assert len(got) == n // 5 and np.allclose(got.mean(axis=(1, 2, 3)), np.arange(0, n, 5) * 250 // n, atol=3)


def test_crops_contain_the_face():
    spec = ClipSpec("x.mp4", 1, "s", 50.0, 480, 270, seed=5)
    r = ClipRenderer(spec)
    idx = sample_indices(r.n_frames, 50.0, 5.0)
    frames = np.stack([r.frame(i) for i in idx])
    track = track_boxes(detect_faces(frames, 480), 5)
    for i, (cx, cy, side) in zip(idx, track):
        x, y, s = r.face_box(i)
        assert x <= cx <= x + s and y <= cy <= y + s  # centre inside the true face square
        assert 0.5 * s <= side <= 1.2 * s


def test_aligned_crops_follow_the_face_closer_than_the_box():
    """Against the renderer's true face square, frame by frame: the aligned chip keeps one size,
    stays on the face, moves on it less from frame to frame than the detector's box does (the
    jitter that reads as facial motion), and barely moves with the smile."""
    spec = ClipSpec("x.mp4", 1, "s", 50.0, 480, 270, seed=7)
    r = ClipRenderer(spec)
    idx = sample_indices(r.n_frames, 50.0, 5.0)
    frames = np.stack([r.frame(i) for i in idx])
    truth = np.array([r.face_centre(i) for i in idx])  # (T, 2) true centre x, y
    jitter = {}
    for crop in ("box", "aligned"):
        cfg = PrepConfig(crop=crop)
        track, found, _ = face_track(frames, "x.mp4", cfg)
        assert found == len(frames) and np.ptp(track[:, 2]) == 0  # one chip size per clip
        assert 0.8 * r.side <= track[0, 2] <= 1.4 * r.side
        off = (track[:, :2] - truth) * cfg.res / track[:, 2:3]  # crop pixels
        assert np.abs(off).max() < 0.15 * cfg.res
        jitter[crop] = np.abs(np.diff(off, axis=0)).mean()
        if crop == "aligned":  # 0.14 px per unit of smile on this clip, 0.85 on the worst of the small corpus
            assert abs(np.polyfit(r.dynamics.lips(r.times[idx]), off[:, 1], 1)[0]) < 0.6
        crops = cut_crops(frames, track, cfg)
        assert crops.shape == (len(frames), 3, 48, 48) and crops.dtype == np.uint8
    assert jitter["aligned"] < 0.7 * jitter["box"], jitter


def test_chip_geometry():
    """extract_chip puts (cx, cy) at the chip's centre, scales `side` px to res, and rotates by angle."""
    frame = np.zeros((120, 200, 3), np.uint8)
    frame[58:63, 138:143] = 255  # a 5 px dot centred at x=140, y=60
    frame[58:63, 158:163] = 128  # a dimmer one 20 px to its right
    chip = align.extract_chip(frame, 140.0, 60.0, 80.0, 0.0, 40, gray=True)[0]  # 2 frame px per chip px
    assert np.unravel_index(chip.argmax(), chip.shape) in {(19, 19), (19, 20), (20, 19), (20, 20)}
    assert chip[18:22, 28:32].max() > 60  # the dim dot, 10 chip px to the right
    turned = align.extract_chip(frame, 140.0, 60.0, 80.0, np.pi / 2, 40, gray=True)[0]
    assert turned[18:22, 28:32].max() < 30 and max(turned[8:12, 18:22].max(), turned[28:32, 18:22].max()) > 60


def test_missing_landmark_model_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(align.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PreprocessError, match="face-recognition-models.*crop: box"):
        align.predictor_path()


SHARED_FOLDS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "uvanemo" / "folds"


def published_uvanemo_folds() -> pd.Series:
    """video -> test fold of the published 10-fold split (folds/{k}/test.json beside the
    checkout, as CI has it; elsewhere the shipped table, which the next test checks against it)."""
    if not SHARED_FOLDS.is_dir():
        return uvanemo_table().set_index("video").fold
    return pd.Series(
        {video: k for k in range(1, 11) for video in json.loads((SHARED_FOLDS / str(k) / "test.json").read_text())}
    )


@pytest.mark.skipif(not SHARED_FOLDS.is_dir(), reason="the published split lies in ../shared beside the checkout")
def test_shipped_uvanemo_table_is_the_published_split():
    t = uvanemo_table().set_index("video")
    published = published_uvanemo_folds()
    assert len(t) == len(published) == 1240 and (t.fold == published.reindex(t.index)).all()
    labels = {
        v: y for k in range(1, 11) for v, y in json.loads((SHARED_FOLDS / str(k) / "test.json").read_text()).items()
    }
    assert (t.label == pd.Series(labels).reindex(t.index)).all()


def test_protocols_are_subject_disjoint(corpora):
    t = uvanemo_table()
    assert t.groupby("subject").fold.nunique().max() == 1 and t.fold.nunique() == 10
    for dataset in ("uvanemo", "bbc", "mmi", "spos"):
        v = list_videos(dataset, corpora[dataset])
        v["fold"] = assign_folds(dataset, v)
        if dataset == "uvanemo":  # the tiny corpus holds a few subjects: their published folds
            assert (v.fold == v.id.map(published_uvanemo_folds())).all()
        else:
            assert v.fold.nunique() == len(folds_for("kfold", dataset))
        for k in folds_for("kfold", dataset):
            s = make_split("kfold", k, dataset, v)
            assert not set(s.train.subject) & set(s.test.subject)
            assert len(s.train) + len(s.test) == len(v)
    bbc = list_videos("bbc", corpora["bbc"])
    assert (bbc.assign(fold=assign_folds("bbc", bbc)).groupby("fold").label.sum() == 1).all()


def _mmi_full_selection() -> pd.DataFrame:
    from rsnet.synth import plan_corpus

    specs = plan_corpus("mmi", "full").specs
    return pd.DataFrame(
        {"id": [s.relpath for s in specs], "label": [s.label for s in specs], "subject": [s.subject for s in specs]}
    )


def test_mmi_default_folds_are_the_authors_subject_lists():
    v = _mmi_full_selection()
    fold = assign_folds("mmi", v)
    # the lists as printed in shared/datasets/README.md (the authors' released loader)
    lists = {
        1: "54 21 46 2 34",
        2: "61 35 5 44 3",
        3: "55 49 45 37",
        4: "60 48 41 42",
        5: "53 32 1 40",
        6: "59 43 47 39",
        7: "56 50",
        8: "57 33 30",
        9: "58 36 29",
    }
    expected = {s: k for k, ids in lists.items() for s in ids.split()}
    assert len(expected) == 34 and set(v.subject) == set(expected)
    assert (fold == v.subject.map(expected)).all()
    assert v.assign(fold=fold).groupby("fold").label.agg(["min", "max"]).eq([0, 1]).all().all()  # both classes
    padded = v.assign(subject=v.subject.str.zfill(3))  # '054' is subject 54
    assert (assign_folds("mmi", padded) == fold).all()


def test_mmi_selection_outside_the_authors_subjects_is_an_error_naming_them():
    v = _mmi_full_selection()
    v.loc[v.subject == "21", "subject"] = "7"
    v.loc[v.subject == "35", "subject"] = "S012"
    with pytest.raises(DatasetError, match=r"subject\(s\) 7, S012 are not in the authors' 9 folds.*balanced"):
        assign_folds("mmi", v)
    with pytest.raises(ValueError, match="valid: authors, balanced"):
        assign_folds("mmi", v, "greedy")


def test_mmi_balanced_folds_take_any_selection():
    v = _mmi_full_selection()
    v["subject"] = "p" + v.subject  # ids the authors' lists do not hold
    fold = assign_folds("mmi", v, "balanced")
    assert sorted(fold.unique()) == list(range(1, 10))
    assert v.assign(fold=fold).groupby("subject").fold.nunique().max() == 1
    assert v.assign(fold=fold).groupby("fold").label.sum().min() > 0  # spontaneous in every fold


def test_group_splits_are_disjoint_and_cover_the_groups(corpora):
    v = list_videos("uvanemo", corpora["uvanemo"])
    v["fold"] = assign_folds("uvanemo", v)
    for split in ("adult->young", "young->adult", "female->male", "male->female"):
        s = make_split(split, 1, "uvanemo", v)
        assert len(s.train) and len(s.test) and not set(s.train.subject) & set(s.test.subject)
    fold = int(v[v.gender == "female"].fold.iloc[0])
    s = make_split("within:female", fold, "uvanemo", v)
    assert set(s.train.gender) | set(s.test.gender) == {"female"}
    empty = next(k for k in range(1, 11) if k not in set(v[v.gender == "female"].fold))
    with pytest.raises(ValueError, match="no test videos in this corpus"):
        make_split("within:female", empty, "uvanemo", v)
    with pytest.raises(ValueError, match="valid: kfold, cross:bbc"):
        make_split("leave-one-out", 1, "uvanemo", v)
    with pytest.raises(ValueError, match=r"valid: \[1, 2, 3, 4, 5, 6, 7\]"):
        make_split("kfold", 8, "spos", v)


def test_every_split_name_parses_into_kind_target_and_groups():
    from rsnet.data.splits import SPLITS, parse_split

    got = {name: (s.kind, s.target, s.train_group, s.test_group) for name in SPLITS for s in [parse_split(name)]}
    assert got["kfold"] == ("kfold", None, None, None)
    assert got["cross:mmi"] == ("cross", "mmi", None, None)
    assert got["adult->young"] == ("transfer", None, "adult", "young")
    assert got["within:female"] == ("within", None, "female", "female")
    assert {k for k, *_ in got.values()} == {"kfold", "cross", "transfer", "within"} and len(got) == 12
    assert (parse_split("cross:spos").train_label("uvanemo"), parse_split("cross:spos").test_label("uvanemo")) == (
        "uvanemo (all)",
        "spos",
    )
    assert parse_split("male->female").test_label("uvanemo") == "uvanemo female"


def test_spos_subjects_match_whole_tokens():
    assert spos_subject("ying_3") == "ying" and spos_subject("yi_3") == "yi"
    assert spos_subject("Xiaopeng-happy-2") == "xiaopeng"
    with pytest.raises(DatasetError, match="as a whole token"):
        spos_subject("yiying_1")


def test_cache_builds_reuses_and_rebuilds_on_change(corpora, tmp_path):
    root = tmp_path / "bbc"
    shutil.copytree(corpora["bbc"], root)
    cfg = PrepConfig(res=32)
    c1 = load_or_build("bbc", root, cfg, tmp_path / "cache", runner=LocalRunner(2), progress=False)
    assert c1.built_now and c1.meta["failed"] == 0 and c1.meta["synthetic"]
    assert c1.frames.shape == (c1.videos.length.sum(), 3, 32, 32) and c1.frames.dtype == np.uint8
    clip = c1.clip(0)
    assert clip.shape[0] == c1.videos.length.iloc[0] and clip.std() > 5
    c2 = load_or_build("bbc", root, cfg, tmp_path / "cache", runner=LocalRunner(2), progress=False)
    assert not c2.built_now and c2.path == c1.path
    np.testing.assert_array_equal(c2.frames, c1.frames)
    video = next((root / "Posed").glob("*.mp4"))
    video.write_bytes(video.read_bytes())  # same bytes, new mtime: a changed source
    c3 = load_or_build("bbc", root, cfg, tmp_path / "cache", runner=LocalRunner(1), progress=False)
    assert c3.built_now and c3.path != c1.path and c1.path.is_dir()  # the old store is kept
    gray = load_or_build("bbc", root, PrepConfig(res=32, channels=1), tmp_path / "cache", progress=False)
    assert gray.frames.shape[1] == 1


def test_two_processes_asking_at_once_build_once(corpora, tmp_path):
    code = textwrap.dedent(f"""
        from rsnet.data import load_or_build, PrepConfig
        from rsnet.data.cache import LocalRunner
        c = load_or_build("spos", {str(corpora["spos"])!r}, PrepConfig(res=24), {str(tmp_path / "c")!r},
                          runner=LocalRunner(1), progress=False)
        print(c.path, c.built_now)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0][0] == outs[1][0]
    assert sorted(o[1] for o in outs) == ["False", "True"]
    assert len([p for p in (tmp_path / "c").iterdir() if p.is_dir()]) == 1


def _broken_corpus(corpora, tmp_path):
    root = tmp_path / "bbc"
    shutil.copytree(corpora["bbc"], root)
    good = sorted((root / "Genuine").glob("*.mp4"))
    data = good[0].read_bytes()
    good[0].write_bytes(data[: len(data) // 3])  # truncated mp4
    (root / "Genuine" / "empty.mp4").write_bytes(b"")  # zero frames (0 bytes)
    noface = ((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8) for _ in range(50))
    write_video(root / "Posed" / "noface.mp4", noface, 25, 64, 64)  # no face
    return root, good[0]


def test_broken_videos_are_reported_and_skipped(corpora, tmp_path):
    root, truncated = _broken_corpus(corpora, tmp_path)
    c = load_or_build("bbc", root, PrepConfig(res=24), tmp_path / "cache", runner=LocalRunner(2), progress=False)
    failed = c.videos[c.videos.status != "ok"].set_index("id")
    assert "empty.mp4: the file is empty" in failed.loc["genuine/empty"].error
    assert "no face" in failed.loc["posed/noface"].error and "noface.mp4" in failed.loc["posed/noface"].error
    trunc_id = f"genuine/{truncated.stem}"
    assert f"{truncated.name}: cannot decode" in failed.loc[trunc_id].error
    assert len(failed) == 3 and len(c.usable) == 19 == len(c.videos) - 3
    assert c.videos.set_index("id").loc[failed.index].length.eq(0).all()


def test_details_file_with_missing_or_extra_row(corpora, tmp_path):
    root = tmp_path / "uva"
    shutil.copytree(corpora["uvanemo"], root)
    details = root / "UvA-NEMO_Smile_Database_File_Details.txt"
    lines = details.read_bytes().split(b"\r\n")
    row = next(line for line in lines if line.endswith(b"deliberate "))
    details.write_bytes(b"\r\n".join(line for line in lines if line != row))
    with pytest.raises(DatasetError, match=r"File_Details.txt: no row for 1 video.*" + row.split(b"\t")[0].decode()):
        list_videos("uvanemo", root)
    details.write_bytes(b"\r\n".join(lines + [b"999_deliberate_smile_1.mp4\t999\tmale  \t30\tdeliberate "]))
    with pytest.raises(DatasetError, match="row for 999_deliberate_smile_1.mp4 but .* does not exist"):
        list_videos("uvanemo", root)
    with pytest.raises(DatasetError, match="valid: uvanemo, bbc, mmi, spos"):
        list_videos("affectnet", root)
    with pytest.raises(DatasetError, match="selection"):
        list_videos("mmi", corpora["mmi"], selection=tmp_path / "nope.csv")


def test_submitit_local_executor_builds_the_same_store(corpora, tmp_path):
    cfg = PrepConfig(res=24)
    a = load_or_build("spos", corpora["spos"], cfg, tmp_path / "a", runner=LocalRunner(2), progress=False)
    runner = SubmititRunner(tmp_path / "logs", cluster="local", timeout_min=10)
    b = load_or_build("spos", corpora["spos"], cfg, tmp_path / "b", runner=runner, progress=False)
    np.testing.assert_array_equal(a.frames, b.frames)
