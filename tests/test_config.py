"""TrialConfig's field roles: every field declares one, and every list of fields elsewhere (the
trial's identity, the report's cell key, trials.csv's columns, the sweep file's keys, TensorBoard's
HParams) is derived from them."""

from dataclasses import dataclass, fields

import pytest

from rsnet.config import ROLES, TrialConfig, check_roles, role, saved_values
from rsnet.report.aggregate import CELL
from rsnet.sweep.spec import AXIS_FIELDS, DEFAULT_FIELDS, SET_BY_SEARCH
from rsnet.sweep.table import AXES

ROLE_OF = {f.name: f.metadata["role"] for f in fields(TrialConfig)}


def test_a_field_without_a_role_is_an_error_naming_it():
    check_roles(TrialConfig)
    assert set(ROLE_OF.values()) <= set(ROLES)

    @dataclass
    class Grown(TrialConfig):
        mixup: float = 0.0  # a new field, no role

    with pytest.raises(TypeError, match=r"Grown\.mixup has no role"):
        check_roles(Grown)

    @dataclass
    class Typo(TrialConfig):
        mixup: float = role("methd", 0.0)

    with pytest.raises(TypeError, match=r"Typo\.mixup has no role \(metadata role 'methd'\)"):
        check_roles(Typo)


@pytest.mark.parametrize("name", list(ROLE_OF))
def test_each_field_is_where_its_role_puts_it(name):
    r = ROLE_OF[name]
    cfg = TrialConfig()
    changed = cfg.replace(**{name: 7 if isinstance(getattr(cfg, name), (int, float)) else "x"})
    assert (changed.hash() != cfg.hash()) == (r in ("data", "replicate", "method", "path"))  # identity
    assert (name in CELL) == (r in ("data", "method", "path"))  # the report pools trials equal in these
    assert (name in AXES) == (r in ("data", "replicate", "method", "path"))  # trials.csv's columns
    searched = name in SET_BY_SEARCH  # nested CV's fields: a sweep's `search` sets them
    assert (name in AXIS_FIELDS) == (r in ("data", "replicate", "method") and not searched)  # a sweep may vary these
    assert (name in DEFAULT_FIELDS) == (r in ("data", "replicate", "method", "runtime") and not searched)


def test_a_config_saved_before_a_field_existed_reads_as_it_ran():
    saved = TrialConfig(crop="aligned").to_dict()
    for name in ("crop", "fpn_dropout", "amp"):
        del saved[name]
    values = saved_values(saved)
    assert (values["crop"], values["fpn_dropout"], values["amp"]) == ("box", 0.2, False)
    assert TrialConfig.from_saved(saved).to_dict() == values
