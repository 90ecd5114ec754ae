"""Synthetic corpora: real layouts, decodable videos, detectable faces, metadata, temporal signal."""

import json
import re

import decord
import dlib
import numpy as np
import pandas as pd
import pytest

from rsnet.protocols import uvanemo_table
from rsnet.synth import ClipRenderer, ClipSpec, generate_corpus, plan_corpus
from rsnet.synth.render import write_clip
from rsnet.synth.signal import held_out_accuracies


def manifest(root):
    return json.loads((root / "SYNTHETIC.json").read_text())


def test_uvanemo_layout_and_details_file(corpora):
    root = corpora["uvanemo"]
    names = sorted(p.name for p in (root / "videos").iterdir())
    assert names and all(re.fullmatch(r"\d{3}_(deliberate|spontaneous)_smile_\d+\.mp4", n) for n in names)
    raw = (root / "UvA-NEMO_Smile_Database_File_Details.txt").read_bytes()
    lines = raw.split(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    rows = [line.decode().split("\t") for line in lines if line.endswith(b".mp4") or b".mp4\t" in line]
    assert len(rows) == len(names) and not lines[0].startswith(b"0")  # header lines first
    table = uvanemo_table().set_index("video")
    for name, subject, gender, age, kind in rows:
        real = table.loc[name[:-4]]
        assert (subject, gender.strip(), int(age)) == (real.subject, real.gender, real.age)
        assert (kind.strip() == "spontaneous") == (real.label == 1)
        assert manifest(root)["clips"][f"videos/{name}"]["label"] == real.label
    # tiny takes whole subjects, one from each of the 10 protocol folds
    chosen = table[table.subject.isin({r[1] for r in rows})]
    assert len(chosen) == len(rows) and chosen.fold.nunique() == 10


def test_bbc_mmi_spos_layouts(corpora):
    bbc = corpora["bbc"]
    assert len(list((bbc / "Genuine").glob("*.mp4"))) == 10 == len(list((bbc / "Posed").glob("*.mp4")))
    mmi = corpora["mmi"]
    sel = pd.read_csv(mmi / "mmi_selection.csv")
    assert list(sel.columns) == ["session", "label", "subject"]
    people = sel.groupby("label").subject.agg(set)  # 9 spontaneous and 9 posed people, as in MMI
    assert len(people[0]) == len(people[1]) == 9 and not people[0] & people[1]
    for row in sel.itertuples():
        folder = mmi / "Sessions" / str(row.session)
        avi = list(folder.glob("S0*.avi"))
        assert len(avi) == 1 and re.fullmatch(r"S\d{3}-\d{3}\.avi", avi[0].name)
        assert (folder / "session.xml").exists() and (folder / f"{avi[0].stem}-oao_aucs.xml").exists()
        assert f'<subject id="{row.subject}"/>' in (folder / "session.xml").read_text()
    spos = corpora["spos"]
    seqs = sorted(spos.glob("*/happy/*"))
    assert {p.parts[-3] for p in seqs} == {"posed", "spontaneous"} and len(seqs) == 14
    assert {p.name.rsplit("_", 1)[0] for p in seqs} == {"tomas", "nelly", "riku", "yi", "ying", "rui", "xiaopeng"}
    from PIL import Image

    img = Image.open(next(seqs[0].glob("*.bmp")))
    assert img.mode == "L" and img.size == (320, 240)


@pytest.mark.parametrize(
    "dataset,pattern", [("uvanemo", "videos/*.mp4"), ("bbc", "*/*.mp4"), ("mmi", "Sessions/*/*.avi")]
)
def test_decord_decodes_at_stated_fps_and_length(corpora, dataset, pattern):
    root = corpora[dataset]
    truth = manifest(root)["clips"]
    for path in sorted(root.glob(pattern))[:6]:
        vr = decord.VideoReader(str(path))
        t = truth[str(path.relative_to(root))]
        assert len(vr) == t["frames"]
        assert vr.get_avg_fps() == pytest.approx(t["fps"], rel=1e-3)
    assert {t["fps"] for t in truth.values()} == {"uvanemo": {50.0}, "bbc": {25.0}, "mmi": {25.0, 29.0}}[dataset]


def test_dlib_finds_the_face_in_most_frames(corpora):
    detector = dlib.get_frontal_face_detector()
    found = total = 0
    for dataset, pattern in (("uvanemo", "videos/*.mp4"), ("bbc", "*/*.mp4"), ("mmi", "Sessions/*/*.avi")):
        for path in sorted(corpora[dataset].glob(pattern))[:4]:
            vr = decord.VideoReader(str(path))
            for frame in vr.get_batch(list(range(0, len(vr), max(1, len(vr) // 5)))).asnumpy():
                found += len(detector(frame, 0)) > 0
                total += 1
    assert found / total >= 0.85, (found, total)


def test_full_sizes_match_the_real_counts():
    uva = plan_corpus("uvanemo", "full").specs
    assert len(uva) == 1240 and len({s.subject for s in uva}) == 400
    assert sum(s.label for s in uva) == 597
    mmi = plan_corpus("mmi", "full").specs
    assert sum(s.label for s in mmi) == 138 and sum(1 - s.label for s in mmi) == 87
    assert len({s.subject for s in mmi if s.label}) == 9 and len({s.subject for s in mmi if not s.label}) == 25
    spos = plan_corpus("spos", "full").specs
    assert (sum(s.label for s in spos), sum(1 - s.label for s in spos)) == (66, 14)
    assert len(plan_corpus("bbc", "full").specs) == 20
    with pytest.raises(ValueError, match="valid: uvanemo, bbc, mmi, spos"):
        plan_corpus("casme", "tiny")


def test_same_seed_same_frames_other_seed_other_frames(tmp_path):
    spec = ClipSpec("videos/001_spontaneous_smile_1.mp4", 1, "001", 50.0, 320, 180, seed=3)
    first, again = ClipRenderer(spec), ClipRenderer(spec)
    assert all(np.array_equal(first.frame(i), again.frame(i)) for i in range(0, first.n_frames, 7))
    other = ClipRenderer(ClipSpec(spec.relpath, 1, "001", 50.0, 320, 180, seed=4)).frame(20)
    assert not np.array_equal(first.frame(20), other)
    # the encoded files are bit-identical too (H.264 in mp4 and MPEG-4 in avi), so decoded frames are
    avi = ClipSpec("Sessions/1/S001-001.avi", 0, "1", 25.0, 320, 240, seed=3, container="avi")
    for s in (spec, avi):
        for d in ("a", "b"):
            write_clip(s, tmp_path / d)
        assert (tmp_path / "a" / s.relpath).read_bytes() == (tmp_path / "b" / s.relpath).read_bytes(), s.relpath
    decoded = decord.VideoReader(str(tmp_path / "a" / spec.relpath), num_threads=1).get_batch([20]).asnumpy()
    assert np.abs(decoded[0].astype(int) - first.frame(20)).mean() < 4.0  # decoded == rendered, up to H.264


def test_same_seed_same_corpus(tmp_path, corpora):
    """A second generation of the session's BBC corpus (seed 0) writes the same bytes."""
    generate_corpus("bbc", "tiny", tmp_path / "again", seed=0, workers=2, progress=False)
    files = sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    assert len(files) > 10
    assert files == sorted(p.relative_to(corpora["bbc"]) for p in corpora["bbc"].rglob("*") if p.is_file())
    assert all((tmp_path / "again" / f).read_bytes() == (corpora["bbc"] / f).read_bytes() for f in files)
    # generating a complete corpus again renders and rewrites no clip
    clips = [f for f in files if f.suffix == ".mp4"]
    mtimes = [(corpora["bbc"] / f).stat().st_mtime_ns for f in clips]
    summary = generate_corpus("bbc", "tiny", corpora["bbc"], seed=0, workers=2, progress=False)
    assert summary["clips"] == len(clips) == 20 and summary["frames"] > 0
    assert [(corpora["bbc"] / f).stat().st_mtime_ns for f in clips] == mtimes


def test_signal_is_temporal_on_held_out_subjects():
    specs = [ClipSpec(f"c{i}.mp4", i % 2, f"s{i // 4}", 50.0, 320, 180, seed=0) for i in range(160)]
    acc = held_out_accuracies(specs, seed=0)
    assert acc["temporal"] >= 0.75, acc
    assert acc["single_frame"] <= 0.65, acc
    assert acc["shuffled"] <= 0.65, acc


def test_classes_reach_the_same_face_shapes():
    rng_specs = [ClipSpec(f"c{i}.mp4", i % 2, f"s{i}", 50.0, 320, 180, seed=1) for i in range(400)]
    amp = {0: [], 1: []}
    for s in rng_specs:
        amp[s.label].append(ClipRenderer(s).dynamics.amplitude)
    assert abs(np.mean(amp[0]) - np.mean(amp[1])) < 0.03


def test_identities_are_the_faces_dlib_finds_robustly():
    from rsnet.synth.faces import DETECTABLE_FACES, robust_faces

    assert robust_faces() == DETECTABLE_FACES and len(DETECTABLE_FACES) >= 75
