"""Each kind is one record, and its registry drives the dispatch and the names (issue 24,
point 4): a loss term, a family and a field added as one record each are usable end to
end — checked in a spec, built, trained — with nothing else changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from scalelab import registry
from scalelab._declare import count, number
from scalelab._errors import SpecError
from scalelab.config import RunConfig
from scalelab.data import names as data_names
from scalelab.losses import names as loss_names
from scalelab.models import names as model_names


def power_error(pred, target, lr, loss, power):
    """(1/n) Σ |ŷ − y|^power."""
    return ((pred - target).abs() ** power).mean()


class Nearest(nn.Module):
    """Nearest-neighbour upsampling plus ``depth`` 1×1 convolutions of ``width`` channels."""

    def __init__(self, width, depth, scale, channels=1, in_channels=None, gain=1.0):
        super().__init__()
        self.scale, self.gain = scale, gain
        layers, cin = [], in_channels or channels
        for _ in range(depth):
            layers += [nn.Conv2d(cin, width, 1), nn.ReLU()]
            cin = width
        self.body = nn.Sequential(*layers, nn.Conv2d(cin, channels, 1))

    def forward(self, lr):
        return self.gain * self.body(nn.functional.interpolate(lr, scale_factor=self.scale))


def uniform_field(n, size, *, seed, device, low):
    generator = torch.Generator().manual_seed(seed)
    return (low + torch.rand(n, 1, size, size, generator=generator)).to(device)


@pytest.fixture
def plugins(monkeypatch):
    """One record of each kind, registered as a plugin would (callables, not import paths)."""
    monkeypatch.setitem(loss_names.REGISTRY, "power_error", loss_names.LossTerm(
        "power_error", power_error, {"power": number(2.0, 1, 4)}))
    monkeypatch.setitem(model_names.REGISTRY, "nearest", model_names.Family(
        "nearest", Nearest, lambda w, d, options, c: w * w * (d - 1) + 2 * w,
        {"gain": number(1.0, 0, low_open=True)}))
    monkeypatch.setitem(data_names.REGISTRY, "uniform", data_names.FieldSource(
        "uniform", "synthetic", uniform_field, {"low": number(0.0, -10, 10)}))


def test_a_new_record_of_each_kind_is_named_checked_built_and_trained(plugins):
    from scalelab.data import make_fields
    from scalelab.losses import get_loss
    from scalelab.models import build_model
    from scalelab.sweep.guards import memory_lower_bound, option_readers
    from scalelab.train import train

    # the names a spec may use come from the registries
    assert "power_error" in registry.loss_variants()
    assert "nearest" in registry.model_families() and "uniform" in registry.fields()
    readers = option_readers()
    assert readers["gain"] == ["family nearest"] and readers["low"] == ["field uniform"]
    # each option's declared range is checked with the spec, naming the key
    base = dict(family="nearest", field="uniform", width=4, depth=2, scale=2, field_size=8,
                samples=8, val_samples=4, steps=2, eval_every=1, batch_size=2,
                loss_variant="0.5*power_error(power=3)", options={"gain": 2.0, "low": 1.0})
    for key, value in (("gain", 0), ("low", 11)):
        with pytest.raises(SpecError, match=key):
            RunConfig(**{**base, "options": {key: value}}).validate()
    with pytest.raises(SpecError, match="power must be in \\[1, 4\\]"):
        RunConfig(**{**base, "loss_variant": "power_error(power=5)"}).validate()
    cfg = RunConfig(**base).validate()
    # the loss: its value against numpy's
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(2, 1, 4, 4)), rng.normal(size=(2, 1, 4, 4))
    value = float(get_loss(cfg.loss)(torch.tensor(pred), torch.tensor(target)))
    assert value == pytest.approx(0.5 * np.mean(np.abs(pred - target) ** 3))
    # the family: built from its record, with its option; its bound sizes the memory check
    model = build_model("nearest", 4, 2, 2, gain=2.0)
    assert isinstance(model, Nearest) and model.gain == 2.0
    assert memory_lower_bound(cfg)["params"] == 4 * 4 * 1 + 2 * 4
    # the field: drawn by its record's maker, with its option
    fields = make_fields("uniform", 3, 8, seed=0, split=0, options={"low": 1.0})
    assert fields.shape == (3, 1, 8, 8) and float(fields.min()) >= 1.0
    # and a run of all three trains end to end
    result = train(cfg)
    assert result.status == "finished" and np.isfinite(result.rows[-1]["val_loss"])


def test_the_names_modules_are_built_from_the_records():
    from scalelab.data.names import DATA_FIELDS, FIELDS, SOURCES
    from scalelab.losses.names import ENSEMBLE, NAMES, PARAMS, TERMS
    from scalelab.models.names import FAMILIES, GENERATIVE, OPTIONS
    from scalelab.models.names import NAMES as FAMILY_NAMES

    assert NAMES == tuple(t.name for t in TERMS)
    assert ENSEMBLE == ("crps_nrg", "crps_fair", "crps_afair", "kl")  # kl: the ensemble's latent
    assert PARAMS["huber"] == {"huber_delta": 1.0}
    assert FAMILY_NAMES == tuple(f.name for f in FAMILIES) and GENERATIVE == ("diffusion", "irn")
    assert OPTIONS["swinir"] == {"heads": None, "window": 8, "blocks": 2, "mlp_ratio": 2.0,
                                 "qk_norm": False}
    assert FIELDS == tuple(s.name for s in SOURCES)
    assert DATA_FIELDS == ("dem", "gridded", "photos", "faces")
    assert count(3).expect() == "a positive integer"


def test_the_data_modules_import_one_way():
    """data.options imports neither data.gridded nor data.images (they import it)."""
    import ast
    from pathlib import Path

    import scalelab.data.options as options

    tree = ast.parse(Path(options.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"scalelab.data.gridded", "scalelab.data.images"}, imported
