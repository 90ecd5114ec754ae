"""Dataset adapters: list a dataset's videos exactly as its owners ship it.

Each adapter returns a DataFrame with one row per video:
    id       unique video id (file stem, or session/sequence name)
    path     video file, or a folder of images for image-sequence datasets
    kind     "video" or "images"
    label    1 spontaneous, 0 posed
    subject  subject id (str)
    fps      the dataset's nominal frame rate (NaN where it varies, as in MMI); preprocessing
             reads each video's own rate from its container
    gender, age, age_group   where known (UvA-NEMO), else empty
Each adapter's docstring and the README's Data section give the layout it reads, as the
dataset's owners ship it. Any other corpus: a manifest CSV (rsnet.data.manifest), or an
installed package's adapter registered in the `rsnet.datasets` entry-point group (a function
`(root, **options) -> DataFrame` with these columns, and `fold` where it gives its folds).
Missing or malformed files raise DatasetError naming the path and what was expected.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..protocols import uvanemo_table
from .manifest import MANIFEST, manifest_path, read_manifest

COLUMNS = ["id", "path", "kind", "label", "subject", "fps", "gender", "age", "age_group"]
UVANEMO_DETAILS = "UvA-NEMO_Smile_Database_File_Details.txt"
UVANEMO_NAME = re.compile(r"(\d{3})_(deliberate|spontaneous)_smile_(\d+)\.mp4")
SPOS_SUBJECTS = ("tomas", "nelly", "riku", "yi", "ying", "rui", "xiaopeng")
MMI_SELECTION = "mmi_selection.csv"
YOUNG_BEFORE = 18  # paper's binary age split: "young" < 18 gives its 149 young / 251 adult people


class DatasetError(ValueError):
    """A dataset on disk does not look as its owners ship it."""


def age_group(age) -> str:
    """Binary split of Fig. 7: 'young' (< 18) or 'adult' (>= 18); '' when the age is unknown."""
    if pd.isna(age):
        return ""
    return "young" if int(age) < YOUNG_BEFORE else "adult"


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{path}: expected {what}, but it is not a directory")
    return path


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["age_group"] = df["age"].map(age_group)
    return df.sort_values("id", kind="stable").reset_index(drop=True)


# --- UvA-NEMO ---------------------------------------------------------------------------
def read_uvanemo_details(path: Path) -> pd.DataFrame:
    """Parse the details file: tab-separated, space-padded, CRLF, header lines skipped (a data
    line has five fields, the first a .mp4 name)."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing; expected UvA-NEMO's file-details table beside videos/")
    rows = []
    for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 5 or not fields[0].lower().endswith(".mp4"):
            continue
        name, subject, gender, age, kind = fields
        if kind not in ("deliberate", "spontaneous") or not age.isdigit():
            raise DatasetError(
                f"{path}:{n}: malformed row {line!r}; expected name, subject, gender, age, deliberate|spontaneous"
            )
        rows.append(
            {"name": name, "subject": subject, "gender": gender, "age": int(age), "label": int(kind == "spontaneous")}
        )
    if not rows:
        raise DatasetError(f"{path}: no data rows found (tab-separated: name, subject, gender, age, type)")
    return pd.DataFrame(rows)


def list_uvanemo(root) -> pd.DataFrame:
    """`<root>/videos/NNN_{deliberate|spontaneous}_smile_K.mp4` (NNN the subject, 1240 videos) and
    `<root>/UvA-NEMO_Smile_Database_File_Details.txt` (name, subject, gender, age, type)."""
    root = Path(root)
    videos = _require_dir(root / "videos", "UvA-NEMO's videos/ folder")
    details = read_uvanemo_details(root / UVANEMO_DETAILS)
    on_disk = {p.name for p in videos.iterdir() if p.suffix.lower() == ".mp4"}
    listed = set(details.name)
    if extra := sorted(on_disk - listed):
        raise DatasetError(f"{root / UVANEMO_DETAILS}: no row for {len(extra)} video(s) in {videos}, e.g. {extra[0]}")
    if missing := sorted(listed - on_disk):
        raise DatasetError(
            f"{root / UVANEMO_DETAILS}: row for {missing[0]} but {videos / missing[0]} "
            f"does not exist ({len(missing)} missing)"
        )
    known = set(uvanemo_table().video)
    rows = []
    for r in details.itertuples():
        m = UVANEMO_NAME.fullmatch(r.name)
        if not m or r.name[:-4] not in known:
            raise DatasetError(
                f"{videos / r.name}: not a UvA-NEMO video name (NNN_deliberate|spontaneous_smile_K.mp4 "
                f"of the published 1240)"
            )
        if int(m.group(2) == "spontaneous") != r.label:
            raise DatasetError(f"{root / UVANEMO_DETAILS}: row {r.name} says label {r.label}, its name disagrees")
        rows.append(
            {
                "id": r.name[:-4],
                "path": str(videos / r.name),
                "kind": "video",
                "label": r.label,
                "subject": r.subject,
                "fps": 50.0,
                "gender": r.gender,
                "age": r.age,
            }
        )
    return _frame(rows)


# --- BBC --------------------------------------------------------------------------------
def _child_ci(root: Path, name: str) -> Path:
    for p in root.iterdir():
        if p.is_dir() and p.name.lower() == name.lower():
            return p
    raise DatasetError(f"{root}: expected a folder {name}/ (any case) holding the BBC {name.lower()} smiles")


def list_bbc(root) -> pd.DataFrame:
    """`<root>/Genuine/*.mp4` and `<root>/Posed/*.mp4` (any case): 20 videos, one person each."""
    root = _require_dir(Path(root), "the BBC smile dataset root")
    rows = []
    for folder, label in (("Genuine", 1), ("Posed", 0)):
        for p in sorted(_child_ci(root, folder).iterdir()):
            if p.suffix.lower() in (".mp4", ".avi", ".mov", ".m4v"):
                rows.append(
                    {
                        "id": f"{folder.lower()}/{p.stem}",
                        "path": str(p),
                        "kind": "video",
                        "label": label,
                        "subject": f"{folder.lower()}/{p.stem}",
                        "fps": 25.0,
                    }
                )
    if not rows:
        raise DatasetError(f"{root}: no videos in Genuine/ or Posed/")
    return _frame(rows)


# --- MMI --------------------------------------------------------------------------------
def read_mmi_selection(path: Path) -> pd.DataFrame:
    """The user-supplied selection (CSV: session, label, subject); see the README."""
    if not path.is_file():
        raise DatasetError(
            f"{path}: missing; MMI needs a selection file (CSV columns session,label,subject) "
            f"naming the sessions to use, since the paper's selection is not public"
        )
    sel = pd.read_csv(path, dtype={"session": str, "subject": str})
    if missing := {"session", "label", "subject"} - set(sel.columns):
        raise DatasetError(f"{path}: missing column(s) {sorted(missing)}; expected session,label,subject")
    if not sel.label.isin([0, 1]).all():
        raise DatasetError(f"{path}: column label must be 0 (posed) or 1 (spontaneous)")
    return sel


def list_mmi(root, selection=None) -> pd.DataFrame:
    """`<root>/Sessions/<session>/S0SS-NNN.avi` (with XML beside it), and the sessions to use from a
    selection CSV (session, label, subject; default `<root>/mmi_selection.csv`): which sessions
    the paper used is not public."""
    root = Path(root)
    sessions = _require_dir(root / "Sessions", "MMI's Sessions/ folder")
    sel = read_mmi_selection(Path(selection) if selection else root / MMI_SELECTION)
    rows = []
    for r in sel.itertuples():
        folder = sessions / str(r.session)
        videos = sorted(folder.glob("*.avi")) if folder.is_dir() else []
        if len(videos) != 1:
            raise DatasetError(
                f"{folder}: expected exactly one .avi for selected session {r.session}, found {len(videos)}"
            )
        rows.append(
            {
                "id": f"{r.session}/{videos[0].stem}",
                "path": str(videos[0]),
                "kind": "video",
                "label": int(r.label),
                "subject": str(r.subject),
                "fps": float("nan"),
            }
        )
    return _frame(rows)


# --- SPOS -------------------------------------------------------------------------------
def spos_subject(name: str) -> str:
    """The subject a sequence folder belongs to, matched as a whole token ("yi" is not in "ying")."""
    tokens = set(re.split(r"[^a-z]+", name.lower()))
    found = [s for s in SPOS_SUBJECTS if s in tokens]
    if len(found) != 1:
        raise DatasetError(
            f"{name}: sequence folder names {len(found)} SPOS subjects; expected exactly one of "
            f"{', '.join(SPOS_SUBJECTS)} as a whole token"
        )
    return found[0]


def list_spos(root, fps: float = 25.0) -> pd.DataFrame:
    """`<root>/{posed|spontaneous}/happy/<sequence>/<i>.bmp` (gray images at 25 fps), each
    sequence folder's name holding one of the 7 subjects' names."""
    root = Path(root)
    rows = []
    for folder, label in (("posed", 0), ("spontaneous", 1)):
        happy = _require_dir(root / folder / "happy", f"SPOS's {folder}/happy/ folder")
        for seq in sorted(p for p in happy.iterdir() if p.is_dir()):
            rows.append(
                {
                    "id": f"{folder}/{seq.name}",
                    "path": str(seq),
                    "kind": "images",
                    "label": label,
                    "subject": spos_subject(seq.name),
                    "fps": fps,
                }
            )
    return _frame(rows)


def adapter_options(dataset: str, mmi_selection: str | None = None) -> dict:
    """Keyword arguments of `dataset`'s adapter from the settings that name them: MMI's selection
    file is the one dataset option (no file given: the adapter's default)."""
    return {"selection": mmi_selection} if dataset == "mmi" and mmi_selection else {}


ADAPTERS = {"uvanemo": list_uvanemo, "bbc": list_bbc, "mmi": list_mmi, "spos": list_spos}
ENTRY_POINTS = "rsnet.datasets"  # installed packages' adapters: name = "package.module:function"
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # part of trial and cache names


@lru_cache(maxsize=1)
def registered() -> dict:
    """Installed adapters: {name: entry point} of the `rsnet.datasets` group."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def is_native(dataset: str) -> bool:
    """One of the paper's four datasets, whose protocols rsnet ships."""
    return dataset in ADAPTERS


def dataset_problem(dataset: str, root) -> str | None:
    """Why `dataset` at `root` cannot be read (None if it can): not one of the four, not an
    installed adapter, and `root` holds no manifest."""
    if is_native(dataset) or dataset in registered():
        return None
    if not DATASET_NAME.fullmatch(dataset):
        return "a dataset's name is letters, digits, '_', '.' and '-'"
    if manifest_path(root) is None:
        installed = ", ".join(sorted(registered())) or "none installed"
        return (
            f"valid: {', '.join(ADAPTERS)}; an adapter of the {ENTRY_POINTS} entry-point group ({installed}); "
            f"or any name whose root holds {MANIFEST} (root {str(root)!r} has none)"
        )
    return None


def adapter_for(dataset: str, root):
    """The function listing `dataset`'s videos: the paper's four, an installed adapter, or the
    manifest reader when `root` holds a manifest."""
    if is_native(dataset):
        return ADAPTERS[dataset]
    if dataset in registered():
        try:
            return registered()[dataset].load()
        except Exception as e:
            raise DatasetError(
                f"dataset {dataset!r}: its adapter {registered()[dataset].value} does not load: {e}"
            ) from e
    if problem := dataset_problem(dataset, root):
        raise DatasetError(f"unknown dataset {dataset!r}; {problem}")
    return read_manifest


def list_videos(dataset: str, root, **kw) -> pd.DataFrame:
    """The videos of `dataset` under `root` (see module docstring for the columns; a `fold`
    column where the dataset gives its own folds)."""
    adapter = adapter_for(dataset, root)
    if not Path(root).exists():
        raise DatasetError(f"{root}: dataset root for {dataset} does not exist")
    videos = adapter(root, **kw)
    if missing := [c for c in COLUMNS if c not in getattr(videos, "columns", ())]:
        raise DatasetError(f"dataset {dataset!r}: its adapter's table lacks column(s) {', '.join(missing)}")
    return videos
