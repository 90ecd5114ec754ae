"""A dataset without code: one CSV names every video, and this adapter reads it.

`<root>/manifest.csv` (or `root` the CSV itself), one row per video:
    path     a video file or a folder of images (one image per frame, in name order),
             relative to the CSV's folder (or absolute)
    label    1 | spontaneous | genuine, or 0 | posed | deliberate
    subject  who is filmed: folds never split a subject
    fold     optional: the test fold (1..K) of the video; without it rsnet builds K = `n_folds`
             subject-disjoint folds, balanced over the labels as far as the subjects allow
    age, gender   optional (gender male|female, m|f): the subgroup splits need them
    fps      optional: the frame rate of an image folder (required for those); a video's own
             rate is read from its container
Every error names the CSV, its line and the field.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .preprocess import IMAGE_SUFFIXES

MANIFEST = "manifest.csv"
REQUIRED = ("path", "label", "subject")
OPTIONAL = ("fold", "age", "gender", "fps")
LABELS = {"1": 1, "spontaneous": 1, "genuine": 1, "0": 0, "posed": 0, "deliberate": 0}
GENDERS = {"male": "male", "m": "male", "female": "female", "f": "female", "": ""}


def manifest_path(root) -> Path | None:
    """The manifest of a dataset root: the CSV itself, or `<root>/manifest.csv`; None if neither."""
    root = Path(root) if root else None
    if root is None:
        return None
    if root.suffix.lower() == ".csv" and root.is_file():
        return root
    return root / MANIFEST if (root / MANIFEST).is_file() else None


def read_manifest(root) -> pd.DataFrame:
    """The videos a manifest names, with the columns of rsnet.data.adapters (and `fold` when the
    CSV gives folds); DatasetError naming the CSV's line and field for a bad row."""
    from .adapters import COLUMNS, DatasetError

    csv = manifest_path(root)
    if csv is None:
        raise DatasetError(f"{root}: no {MANIFEST} (columns {', '.join(REQUIRED)}[, {', '.join(OPTIONAL)}])")
    table = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = [c.strip().lower() for c in table.columns]
    if missing := [c for c in REQUIRED if c not in table.columns]:
        raise DatasetError(f"{csv}: missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED)}")
    if unknown := sorted(set(table.columns) - set(REQUIRED) - set(OPTIONAL)):
        raise DatasetError(f"{csv}: unknown column(s) {', '.join(unknown)}; valid: {', '.join(REQUIRED + OPTIONAL)}")
    if table.empty:
        raise DatasetError(f"{csv}: no rows")
    rows, seen = [], {}
    for line, r in zip(range(2, len(table) + 2), table.to_dict("records")):
        rows.append(_row(csv, line, r))
        if (key := rows[-1]["id"]) in seen:  # the path without its suffix names the video
            raise DatasetError(f"{csv}:{line}: path {r['path']!r}: the same video as line {seen[key]}")
        seen[key] = line
    out = pd.DataFrame(rows, columns=[*COLUMNS, "fold"])
    if "fold" in table.columns:
        _check_folds(out, csv)
    else:
        out = out.drop(columns="fold")
    return out.sort_values("id", kind="stable").reset_index(drop=True)


def _row(csv: Path, line: int, r: dict) -> dict:
    """One video of the manifest from its CSV row (line `line`)."""
    from .adapters import DatasetError, age_group

    def bad(field: str, what: str) -> DatasetError:
        return DatasetError(f"{csv}:{line}: {field} {r.get(field, '')!r}: {what}")

    rel = r["path"].strip()
    path = (csv.parent / rel).resolve() if rel else None
    if path is None or not path.exists():
        raise bad("path", f"no such file or folder ({path})" if path else "empty")
    kind = "images" if path.is_dir() else "video"
    if kind == "images" and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        raise bad("path", f"a folder without images ({', '.join(IMAGE_SUFFIXES)})")
    label = LABELS.get(r["label"].strip().lower())
    if label is None:
        raise bad("label", f"unknown label; valid: {', '.join(LABELS)}")
    if not r["subject"].strip():
        raise bad("subject", "empty")
    fps = _number(r.get("fps", ""), lambda: bad("fps", "not a frame rate > 0"), positive=True)
    if kind == "images" and fps != fps:
        raise bad("fps", f"{path} is a folder of images: give its frame rate in an fps column")
    gender = GENDERS.get(r.get("gender", "").strip().lower())
    if gender is None:
        raise bad("gender", "valid: male, female, m, f, or empty")
    age = _number(r.get("age", ""), lambda: bad("age", "not an age in years"))
    return {
        "id": str(Path(rel).with_suffix("") if kind == "video" else Path(rel)),
        "path": str(path),
        "kind": kind,
        "label": label,
        "subject": r["subject"].strip(),
        "fps": fps,
        "gender": gender,
        "age": age,
        "age_group": age_group(age),
        "fold": _fold(r.get("fold", ""), lambda: bad("fold", "not a fold number 1, 2, ...")),
    }


def _number(text: str, error, positive: bool = False) -> float:
    text = str(text).strip()
    if not text:
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        raise error() from None
    if value < 0 or (positive and value == 0):
        raise error()
    return value


def _fold(text: str, error) -> int | None:
    text = str(text).strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise error()
    return int(text)


def _check_folds(videos: pd.DataFrame, csv: Path) -> None:
    """Given folds: every row has one, a subject lies in one fold, folds 1..K each test something."""
    from .adapters import DatasetError

    lines = videos.index + 2  # the CSV's line of each row (its header is line 1)
    if videos.fold.isna().any():
        raise DatasetError(f"{csv}:{lines[videos.fold.isna()][0]}: fold '': empty, while other rows give one")
    first = videos.groupby("subject").fold.transform("first")
    if (moved := videos.fold != first).any():
        r = videos[moved].iloc[0]
        where = lines[(videos.subject == r.subject).to_numpy()]
        raise DatasetError(
            f"{csv}:{lines[moved.to_numpy()][0]}: subject {r.subject!r} is in fold {int(first[moved].iloc[0])} "
            f"and fold {int(r.fold)} (lines {', '.join(map(str, where))}): folds must be subject-disjoint"
        )
    k = int(videos.fold.max())
    if empty := sorted(set(range(1, k + 1)) - set(videos.fold.astype(int))):
        raise DatasetError(f"{csv}: fold(s) {', '.join(map(str, empty))} of 1..{k} have no videos")
