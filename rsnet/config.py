"""One typed config per trial, saved beside every result and checkpoint.

Defaults are the paper's (Sec. 4.1): 60 epochs, batch 16, Adam with learning rate 1e-3 and
weight decay 0.005, the weighted loss of Eq. 3, 5 fps, 48x48, colour.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields

from .data.adapters import adapter_options, dataset_problem
from .data.preprocess import CROPS, PrepConfig
from .data.splits import MMI_FOLDS, SPLITS, folds_for, parse_split
from .loss import WEIGHTINGS
from .model import VARIANTS, SmileNet, build_model, plugins
from .model.variants import VALID_NOTE

TEMPORAL_CONTROLS = ("none", "shuffle", "single_frame")
# Every field declares one role; every list of fields elsewhere (a trial's identity, the report's
# cells, the sweep file's keys, trials.csv's columns, TensorBoard's HParams) is derived from these.
ROLES = {
    "data": "what is evaluated: the dataset, its selection and its protocol",
    "replicate": "which of the protocol's folds and seeds: the trials a report cell pools",
    "method": "how the model is built, fed and trained",
    "path": "where the data lies (a sweep sets these from --data-root)",
    "runtime": "how the process runs, not what it computes (a sweep's defaults may set these)",
    "process": "set by whoever runs the trial (a sweep: from --cache and resources.cpu)",
}
# fields added after results existed, left out of a trial's identity at the value that gives those
# results, so that earlier trials keep their names (and resume)
LATER_FIELDS = {
    "fpn_dropout": 0.2,
    "n_folds": 10,
    "variant_options": "",
    "inner_folds": 0,
    "inner_fold": 0,
    "tuned": "",
}


def role(name: str, default):
    """A TrialConfig field of role `name` (one of ROLES)."""
    return field(default=default, metadata={"role": name})


@dataclass
class TrialConfig:
    dataset: str = role("data", "uvanemo")
    root: str = role("path", "")  # the dataset's root folder
    split: str = role("data", "kfold")  # see rsnet.data.splits
    fold: int = role("replicate", 1)
    seed: int = role("replicate", 0)
    # nested cross-validation (a sweep's `search`): > 0 trains on the outer fold's training subjects
    # less inner fold `inner_fold` of `inner_folds` subject-disjoint folds, and tests on that fold
    inner_folds: int = role("data", 0)
    inner_fold: int = role("replicate", 0)
    target_root: str = role("path", "")  # cross:<target> splits: the target dataset's root
    # MMI, as dataset or cross target: selection CSV (default <root>/mmi_selection.csv); which sessions are evaluated
    mmi_selection: str = role("data", "")
    mmi_folds: str = role("data", "authors")  # MMI: the authors' 9 subject lists | balanced (greedy, any selection)
    n_folds: int = role("data", 10)  # a corpus of one's own without folds: subject-disjoint folds built
    # model and loss
    variant: str = role("method", "full")
    # a researcher's builder's keyword options (JSON text; a sweep file or from_dict may give a mapping)
    variant_options: str = role("method", "")
    loss_weighting: str = role("method", "balanced")
    forget_bias: float | None = role("method", None)  # ConvLSTM forget-gate bias init; None = PyTorch default
    fpn_dropout: float = role("method", 0.0)  # the FPN's per-frame Dropout2d: 0 the paper's text, 0.2 the authors'
    temporal_control: str = role("method", "none")  # none | shuffle (frames shuffled in time) | single_frame
    # input
    fps: float = role("method", 5.0)
    frame_stride: int = role("method", 0)  # > 0: every k-th frame (authors' loader: 5) in place of fps by time
    resolution: int = role("method", 48)
    channels: int = role("method", 3)
    crop: str = role("method", "aligned")  # aligned: chips placed by the eye landmarks | box: detector's box
    # optimisation
    epochs: int = role("method", 60)
    batch_size: int = role("method", 16)
    lr: float = role("method", 1e-3)
    weight_decay: float = role("method", 0.005)
    l2_penalty: float = role("method", 0.0)  # authors' code: 0.001 * sum of every parameter tensor's L2 norm
    val_fraction: float = role("method", 0.0)  # > 0: a subject-disjoint validation split picks the epoch
    # set by a sweep's search on the configuration it chose: that search (JSON); the report pools
    # these trials over outer folds whatever each chose of the searched fields
    tuned: str = role("method", "")
    amp: bool = role("method", False)  # mixed precision (bf16 autocast) on CUDA; ignored on CPU
    # how the process runs (not part of the result's identity)
    device: str = role("runtime", "auto")  # auto | cpu | cuda | cuda:N
    checkpoint_every: int = role("runtime", 5)
    threads: int = role("process", 0)  # torch threads the entry point sets; 0 = the CPUs this process may use
    cache: str = role("process", "")  # preprocessing cache root; "" = $RSNET_CACHE or ./cache

    def __post_init__(self):
        if isinstance(self.variant_options, dict):  # one text per mapping: a cell key, a CSV field, an HParam
            self.variant_options = json.dumps(self.variant_options, sort_keys=True) if self.variant_options else ""

    def options(self) -> dict:
        """The keyword options of the variant's builder (variant_options)."""
        return json.loads(self.variant_options) if self.variant_options else {}

    def validate(self) -> "TrialConfig":
        def bad(field, value, valid):
            raise ValueError(f"config field {field}: {value!r} is not valid; valid: {valid}")

        if problem := dataset_problem(self.dataset, self.root):
            raise ValueError(f"config field dataset: {self.dataset!r} is not valid; {problem}")
        if self.n_folds < 2:
            bad("n_folds", self.n_folds, "integers >= 2")
        if self.variant not in VARIANTS and not plugins.is_plugin(self.variant):
            bad("variant", self.variant, VALID_NOTE)
        try:
            options = self.options()
        except ValueError:
            options = None
        if not isinstance(options, dict):
            bad("variant_options", self.variant_options, "a mapping of the builder's keyword options")
        if options and not plugins.is_plugin(self.variant):
            bad("variant_options", options, f"none for the shipped variant {self.variant!r} (a researcher's builder's)")
        if self.loss_weighting not in WEIGHTINGS:
            bad("loss_weighting", self.loss_weighting, ", ".join(WEIGHTINGS))
        if self.split not in SPLITS:
            bad("split", self.split, ", ".join(SPLITS))
        if self.mmi_folds not in MMI_FOLDS:
            bad("mmi_folds", self.mmi_folds, ", ".join(MMI_FOLDS))
        if self.temporal_control not in TEMPORAL_CONTROLS:
            bad("temporal_control", self.temporal_control, ", ".join(TEMPORAL_CONTROLS))
        valid_folds = folds_for(self.split, self.dataset, self.root, self.n_folds)
        if self.fold not in valid_folds:
            bad("fold", self.fold, valid_folds)
        if self.inner_folds == 1 or self.inner_folds < 0:
            bad("inner_folds", self.inner_folds, "0 (no inner folds) or >= 2")
        if self.inner_folds and self.inner_fold not in range(1, self.inner_folds + 1):
            bad("inner_fold", self.inner_fold, f"1..{self.inner_folds}")
        if not self.inner_folds and self.inner_fold:
            bad("inner_fold", self.inner_fold, "0 without inner_folds")
        if self.crop not in CROPS:
            bad("crop", self.crop, ", ".join(CROPS))
        if self.channels not in (1, 3):
            bad("channels", self.channels, "1, 3")
        if self.resolution % 8 or self.resolution < 24:
            bad("resolution", self.resolution, "multiples of 8 from 24 (48, 64, 96, 112)")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                bad(name, getattr(self, name), "integers >= 1")
        if not 0.0 <= self.fpn_dropout < 1.0:
            bad("fpn_dropout", self.fpn_dropout, "[0, 1)")
        if not 0.0 <= self.val_fraction < 1.0:
            bad("val_fraction", self.val_fraction, "[0, 1)")
        if self.fps <= 0:
            bad("fps", self.fps, "> 0")
        if self.frame_stride < 0:
            bad("frame_stride", self.frame_stride, "0 (sample by time at fps) or a stride >= 1")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "TrialConfig":
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(d) - known):
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**d)

    @classmethod
    def from_saved(cls, d: dict, where: str = "config") -> "TrialConfig":
        """A config a trial wrote (config.json, a checkpoint), completed by `saved_values`."""
        return cls.from_dict(saved_values(d), where)

    def replace(self, **kw) -> "TrialConfig":
        return dataclasses.replace(self, **kw)

    def prep(self) -> PrepConfig:
        """The preprocessing this trial's frames come from (its cache, and rsnet.predict's input)."""
        return PrepConfig(
            fps=self.fps, stride=self.frame_stride, res=self.resolution, channels=self.channels, crop=self.crop
        )

    def model(self) -> SmileNet:
        """This trial's network, untrained (training builds it; rsnet.predict loads weights into it)."""
        return build_model(
            self.variant, self.channels, self.resolution, self.forget_bias, self.fpn_dropout, self.options()
        )

    def listing(self, dataset: str) -> dict:
        """Keyword arguments of `rsnet.data.list_videos` for `dataset`, this trial's own or its
        cross-domain target: the MMI selection is the one dataset option."""
        return adapter_options(dataset, self.mmi_selection)

    def target(self) -> str | None:
        """The dataset a cross:<target> split tests on; None for the other splits."""
        return parse_split(self.split).target

    def identity(self) -> dict:
        """The fields that can change the result (RESULT_FIELDS; a LATER_FIELDS field at its earlier value left out)."""
        return {k: v for k, v in self.to_dict().items() if k in RESULT_FIELDS and LATER_FIELDS.get(k, object()) != v}

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:12]


def check_roles(cls=TrialConfig) -> None:
    """Every field of `cls` has a role of ROLES (a new field without one fails here, at import)."""
    for f in fields(cls):
        if f.metadata.get("role") not in ROLES:
            raise TypeError(
                f"{cls.__name__}.{f.name} has no role (metadata role {f.metadata.get('role')!r}); "
                f"declare one of {', '.join(ROLES)} with rsnet.config.role()"
            )


def with_role(*roles: str) -> list[str]:
    """The names of TrialConfig's fields of these roles, in declaration order."""
    return [f.name for f in fields(TrialConfig) if f.metadata["role"] in roles]


check_roles()
RESULT_FIELDS = with_role("data", "replicate", "method", "path")  # a trial's identity (its hash and name)
CELL_FIELDS = with_role("data", "method", "path")  # a report cell pools trials equal in all of these
SETTABLE_FIELDS = with_role("data", "replicate", "method")  # a sweep's axes and settings; TensorBoard's HParams
SWEEP_DEFAULT_FIELDS = with_role("data", "replicate", "method", "runtime")  # a sweep file's defaults
_DEFAULTS = TrialConfig().to_dict()


def saved_values(d: dict) -> dict:
    """A saved config's fields completed as the trial ran them: a config saved before the crop
    option existed was trained on the detector's box; one saved before a LATER_FIELDS field existed
    had the value that field names; any other missing field has its default."""
    return {**_DEFAULTS, "crop": "box", **LATER_FIELDS, **d}
