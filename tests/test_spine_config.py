"""RunConfig: content-hash run ids and type checks."""

import pytest

from scalelab import RunConfig, SpecError


def test_run_id_is_a_content_hash():
    a = RunConfig(width=8, samples=256)
    assert a.run_id == RunConfig(width=8, samples=256).run_id
    assert a.run_id != RunConfig(width=16, samples=256).run_id
    # where a run executes does not change what it is
    assert a.run_id == RunConfig(width=8, samples=256, device="cpu").run_id
    assert len(a.run_id) == 12 and int(a.run_id, 16) >= 0


def test_from_dict_coerces_yaml_values_and_names_bad_types():
    cfg = RunConfig.from_dict({"lr": "1e-3", "steps": 10.0, "width": 4})
    assert cfg.lr == 1e-3 and cfg.steps == 10 and isinstance(cfg.steps, int)
    with pytest.raises(SpecError, match="width must be int, got 'wide'"):
        RunConfig.from_dict({"width": "wide"})
    with pytest.raises(SpecError, match="unknown parameter 'depht'"):
        RunConfig.from_dict({"depht": 3})
