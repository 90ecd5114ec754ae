"""The four datasets' on-disk layouts, as the adapters read them: which clips a corpus
of a given size holds, and the metadata files each dataset ships beside its videos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..data.adapters import MMI_SELECTION, SPOS_SUBJECTS
from ..data.adapters import UVANEMO_DETAILS as DETAILS_NAME
from ..protocols import mmi_authors_folds, uvanemo_table
from .render import ClipSpec

SIZES = ("tiny", "small", "full")


@dataclass
class CorpusPlan:
    specs: list[ClipSpec]
    write_metadata: Callable[[Path, list[ClipSpec]], None]


def _size_frame(frame_size, default):
    return tuple(frame_size) if frame_size else default


# --- UvA-NEMO ---------------------------------------------------------------------------
def _uvanemo_subjects(size: str) -> list[str]:
    """Whole subjects of the real table: all 400 (full), or 4 (small) / 1 (tiny) per protocol
    fold, having both posed and spontaneous clips and spread over gender x age group (young
    < 18) so that every split of the paper has videos."""
    table = uvanemo_table()
    if size == "full":
        return sorted(table.subject.unique())
    per_fold = {"small": 4, "tiny": 1}[size]
    subj = table.groupby("subject").agg(
        fold=("fold", "first"), gender=("gender", "first"), age=("age", "first"), kinds=("label", "nunique")
    )
    subj = subj[subj.kinds == 2]
    strata = [("male", False), ("female", False), ("male", True), ("female", True)]
    chosen = []
    for k, (_, fold) in enumerate(subj.groupby("fold")):
        for j in range(per_fold):
            gender, young = strata[(k + j) % len(strata)]
            pool = fold[(fold.gender == gender) & ((fold.age < 18) == young) & ~fold.index.isin(chosen)]
            pool = pool if len(pool) else fold[~fold.index.isin(chosen)]
            chosen.append(sorted(pool.index)[0])
    return sorted(chosen)


def write_uvanemo_details(root: Path, rows: pd.DataFrame) -> None:
    """The details file in the real format: header lines, tab-separated, space-padded, CRLF."""
    lines = ["UvA-NEMO Smile Database - File Details", "", "File Name\tSubject Code\tGender\tAge\tType", ""]
    for r in rows.itertuples():
        kind = "spontaneous" if r.label == 1 else "deliberate"
        lines.append(f"{r.video}.mp4\t{r.subject}\t{r.gender:<6}\t{r.age}\t{kind:<11}")
    (root / DETAILS_NAME).write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))


def plan_uvanemo(size, seed, frame_size=None, **kw) -> CorpusPlan:
    w, h = _size_frame(frame_size, (320, 180) if size == "tiny" else (480, 270))
    table = uvanemo_table()
    rows = table[table.subject.isin(_uvanemo_subjects(size))]
    specs = [
        ClipSpec(f"videos/{r.video}.mp4", int(r.label), r.subject, 50.0, w, h, seed, **kw) for r in rows.itertuples()
    ]
    return CorpusPlan(specs, lambda root, _: write_uvanemo_details(root, rows))


# --- BBC --------------------------------------------------------------------------------
def plan_bbc(size, seed, frame_size=None, **kw) -> CorpusPlan:
    w, h = _size_frame(frame_size, (314, 286))
    specs = []
    for folder, label in (("Genuine", 1), ("Posed", 0)):
        for i in range(1, 11):
            stem = f"{folder.lower()}_{i:02d}"
            specs.append(
                ClipSpec(
                    f"{folder}/{stem}.mp4", label, f"{folder.lower()}/{stem}", 25.0, w, h, seed, face_frac=0.65, **kw
                )
            )
    return CorpusPlan(specs, lambda root, _: None)


# --- MMI --------------------------------------------------------------------------------
def _mmi_counts(size: str) -> tuple[dict[int, int], dict[int, int]]:
    """Spontaneous and posed clips per subject id of the authors' 9 folds (rsnet/protocols/
    mmi_9fold.csv): the paper's 138 + 87 from 9 + 25 people at full; smaller sizes keep every
    fold's spontaneous subject (53-61, the first of each fold's list) and one posed subject."""
    folds = pd.Series(mmi_authors_folds()).rename_axis("subject").reset_index(name="fold")
    folds["subject"] = folds.subject.astype(int)
    spont_ids = sorted(folds.subject[folds.subject >= 53])
    posed = folds[folds.subject < 53]
    if size == "full":
        spont = {s: 16 if i < 3 else 15 for i, s in enumerate(spont_ids)}  # 138
        return spont, {s: 4 if i < 12 else 3 for i, s in enumerate(sorted(posed.subject))}  # 87
    n = {"small": 2, "tiny": 1}[size]
    return {s: n for s in spont_ids}, {int(g.subject.iloc[0]): n for _, g in posed.groupby("fold")}


def _mmi_xml(spec: ClipSpec, session: int) -> dict[str, str]:
    stem = Path(spec.relpath).stem
    subject = int(spec.subject)
    emotion = '\n  <Metatag Name="Emotion" Value="5"/>' if spec.label == 0 else ""
    session_xml = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<session sessionId="{session}" '
        f'mediaFile="{stem}.avi">\n  <subject id="{subject}"/>{emotion}\n'
        f'  <track id="0" type="Video" view="0" filename="{stem}.avi"/>\n'
        f'  <annotation id="1" type="FACS" filename="{stem}-oao_aucs.xml"/>\n</session>\n'
    )
    video_xml = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<Metadata>\n  <Video FrameRate="{spec.fps:g}" '
        f'Width="{spec.width}" Height="{spec.height}"/>\n</Metadata>\n'
    )
    return {"session.xml": session_xml, f"{stem}.xml": video_xml}


def _mmi_aus(truth_dyn: dict, fps: float) -> str:
    """AU12 and AU6 markers (1-based frames: onset, apex, offset, end) from the clip's dynamics."""
    t0 = truth_dyn["lead"]
    marks = [
        t0,
        t0 + truth_dyn["onset"],
        t0 + truth_dyn["onset"] + truth_dyn["apex"],
        t0 + truth_dyn["onset"] + truth_dyn["apex"] + truth_dyn["offset"],
    ]
    markers = "".join(
        f'\n    <Marker Frame="{int(round(t * fps)) + 1}" Type="{k}"/>' for k, t in zip((1, 2, 3, 0), marks)
    )
    aus = "".join(f'\n  <ActionUnit Number="{n}">{markers}\n  </ActionUnit>' for n in (12, 6))
    return f'<?xml version="1.0" encoding="utf-8"?>\n<ActionUnits>{aus}\n</ActionUnits>\n'


def plan_mmi(size, seed, frame_size=None, **kw) -> CorpusPlan:
    spont, posed = _mmi_counts(size)
    scale = 2 if size == "tiny" else 1
    specs, sessions, session = [], {}, 100
    for label, counts, fps, (w, h) in ((0, posed, 25.0, (720, 576)), (1, spont, 29.0, (640, 480))):
        w, h = _size_frame(frame_size, (w // scale, h // scale))
        for subject, n in counts.items():
            for take in range(1, n + 1):
                session += 1
                num = take + (50 if label == 1 else 0)
                rel = f"Sessions/{session}/S{subject:03d}-{num:03d}.avi"
                specs.append(ClipSpec(rel, label, f"{subject}", fps, w, h, seed, container="avi", face_frac=0.55, **kw))
                sessions[rel] = session

    def write(root: Path, specs_: list[ClipSpec]) -> None:
        from .render import ClipRenderer

        rows = []
        for spec in specs_:
            folder = (root / spec.relpath).parent
            for name, text in _mmi_xml(spec, sessions[spec.relpath]).items():
                (folder / name).write_text(text)
            aus = _mmi_aus(ClipRenderer(spec).dynamics.to_dict(), spec.fps)
            (folder / f"{Path(spec.relpath).stem}-oao_aucs.xml").write_text(aus)
            rows.append({"session": sessions[spec.relpath], "label": spec.label, "subject": spec.subject})
        pd.DataFrame(rows).to_csv(root / MMI_SELECTION, index=False)

    return CorpusPlan(specs, write)


# --- SPOS -------------------------------------------------------------------------------
def plan_spos(size, seed, frame_size=None, **kw) -> CorpusPlan:
    w, h = _size_frame(frame_size, (320, 240) if size == "tiny" else (640, 480))
    if size == "full":  # 66 spontaneous, 14 posed
        spont = {s: 10 if i < 3 else 9 for i, s in enumerate(SPOS_SUBJECTS)}
        posed = {s: 2 for s in SPOS_SUBJECTS}
    else:
        n = {"small": 2, "tiny": 1}[size]
        spont, posed = {s: n for s in SPOS_SUBJECTS}, {s: 1 for s in SPOS_SUBJECTS}
    specs = []
    for folder, label, counts in (("posed", 0, posed), ("spontaneous", 1, spont)):
        for subject, n in counts.items():
            for k in range(1, n + 1):
                specs.append(
                    ClipSpec(
                        f"{folder}/happy/{subject}_{k}",
                        label,
                        subject,
                        25.0,
                        w,
                        h,
                        seed,
                        gray=True,
                        container="bmp",
                        face_frac=0.8,
                        **kw,
                    )
                )
    return CorpusPlan(specs, lambda root, _: None)


PLANS = {"uvanemo": plan_uvanemo, "bbc": plan_bbc, "mmi": plan_mmi, "spos": plan_spos}


def plan_corpus(dataset: str, size: str, seed: int = 0, frame_size=None, **kw) -> CorpusPlan:
    if dataset not in PLANS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(PLANS)}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; valid: {', '.join(SIZES)}")
    return PLANS[dataset](size, seed, frame_size, **kw)
