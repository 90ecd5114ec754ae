"""python -m rsnet.report RESULTS [--out DIR]

Reads every sweep under RESULTS (directories holding trials/), or one sweep directory, and
writes the paper's tables and figures into RESULTS/report/ (or --out): index.md shows them all."""

from __future__ import annotations

import argparse
import sys

from ..provenance import synthetic_note
from .write import build_report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rsnet.report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("results", help="a results directory (every sweep below it) or one sweep directory")
    ap.add_argument("--out", help="where to write (default RESULTS/report)")
    args = ap.parse_args(argv)
    try:
        r = build_report(args.results, args.out)
    except FileNotFoundError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    print(
        f"report: {r['finished']} finished, {r['failed']} failed of {r['trials']} trials"
        + synthetic_note(r["synthetic"])
    )
    print(f"report: {len(r['tables'])} tables, {len(r['figures'])} figures in {r['out']}/ -> open {r['out']}/index.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
