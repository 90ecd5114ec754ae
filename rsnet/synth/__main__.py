"""python -m rsnet.synth --dataset {uvanemo,bbc,mmi,spos} --size {tiny,small,full} --out DIR"""

from __future__ import annotations

import argparse

from .corpus import generate_corpus
from .dynamics import DESIGNS
from .layouts import PLANS, SIZES


def frame_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--frame-size wants WIDTHxHEIGHT, e.g. 1920x1080; got {text!r}") from None
    if w < 64 or h < 64 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"--frame-size {text}: width and height must be even and >= 64")
    return w, h


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m rsnet.synth",
        description=(
            "Generate a look-alike synthetic smile corpus in a real dataset's on-disk layout, from the "
            "real LFW faces that ship with scikit-image."
        ),
    )
    ap.add_argument("--dataset", required=True, choices=list(PLANS))
    ap.add_argument("--size", default="small", choices=SIZES)
    ap.add_argument("--out", required=True, help="corpus root (created; existing clips are kept)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--frame-size",
        type=frame_size,
        default=None,
        help="WIDTHxHEIGHT for every clip (default: the dataset's, smaller for UvA-NEMO)",
    )
    ap.add_argument(
        "--design",
        choices=DESIGNS,
        default="order",
        help="order: class = order of slow/fast phases (default); literature: onset speed, "
        "asymmetry, late eyes, longer clips",
    )
    ap.add_argument(
        "--difficulty",
        type=float,
        default=None,
        help="class overlap in [0, 1]; best possible accuracy is 1 - difficulty/2 (default 0.1)",
    )
    ap.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    a = ap.parse_args(argv)
    s = generate_corpus(a.dataset, a.size, a.out, a.seed, a.frame_size, a.design, a.difficulty, a.workers)
    print(
        f"synth: {s['clips']} clips, {s['frames']} frames of {s['dataset']}/{s['size']} in "
        f"{s['seconds']:.1f} s -> {s['root']}"
    )


if __name__ == "__main__":
    main()
