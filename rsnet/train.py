"""python -m rsnet.train --dataset NAME --root DIR --fold K --seed S --variant full --out DIR [...]

Trains and evaluates one trial (see rsnet.trial); every TrialConfig field is a flag. Rerun on
the same --out to resume a stopped trial; a finished trial is not rerun.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

from .config import TrialConfig
from .data import DatasetError
from .model import plugins
from .provenance import synthetic_note
from .runtime import configure_process
from .trial import TrialError, run_trial


def _parse_optional_float(text: str):
    return None if text.lower() in ("none", "") else float(text)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rsnet.train", description=__doc__.split("\n\n")[1])
    ap.add_argument("--out", required=True, help="the trial's output directory")
    hints = typing.get_type_hints(TrialConfig)
    for f in dataclasses.fields(TrialConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        if kind is bool:
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        elif kind == (float | None):
            ap.add_argument(flag, type=_parse_optional_float, default=f.default, metavar="FLOAT|none")
        else:
            ap.add_argument(flag, type=kind, default=f.default)
    return ap


def main(argv=None) -> int:
    args = vars(parser().parse_args(argv))
    out = args.pop("out")
    try:
        cfg = TrialConfig(**args).validate()
        if plugins.is_plugin(cfg.variant):  # a researcher's: held to the forward contract first
            plugins.check_contract(cfg.model(), cfg.channels, cfg.resolution)
        configure_process(cfg.threads)
        result = run_trial(cfg, out, report=_print_epoch, progress=True)
    except (ValueError, DatasetError, TrialError) as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 2
    print(
        f"train: accuracy {result['accuracy']:.4f} ({result['selection']}, epoch {result['selected_epoch']}); "
        f"optimistic (best test epoch {result['optimistic_epoch']}) {result['optimistic_accuracy']:.4f}; "
        f"{result['test_videos']} test videos -> {out}{synthetic_note(result['synthetic'])}"
    )
    return 0


def _print_epoch(row: dict, checkpoint) -> None:
    extra = f" val {row['val_acc']:.3f}" if "val_acc" in row else ""
    print(
        f"epoch {row['epoch']:3d}  loss {row['train_loss']:.4f}  train {row['train_acc']:.3f}{extra}  "
        f"test {row['test_acc']:.3f}  {row['seconds']:.1f}s{'  [checkpoint]' if checkpoint else ''}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
