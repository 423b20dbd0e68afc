"""Learned adaptive downscaling kernels (ADK-Net): a small network that predicts, for each
LR pixel and each channel, the k×k kernel that resamples the HR patch under it.

Sun & Chen 2020, "Learned Image Downscaling for Upscaling using Content Adaptive
Resampler" (CAR), and the adaptive downscaling kernels of ADK-Net: the LR value is
y[c, i, j] = Σ_{u,v} K[c, i, j, u, v] · x[c, s·i + u − p, s·j + v − p], p = (k − s)/2
(reflect padding at the edges), with Σ_{u,v} K = 1, so a constant field stays constant.
Each kernel is the block mean's (1/s² on the s×s block under the LR pixel) plus the
network's correction less its mean over the k² taps: linear in the network's output, so
no tap is stuck as it would be at the far end of a softmax, and free to go negative as
bicubic's lobes do. The kernels are predicted from the HR itself (per channel: each channel is read
alone, so the network serves a target with any number of channels and predictors):
``depth`` 3×3 convolutions of ``width`` channels at the HR grid, one s×s convolution of
stride s to the LR grid and a 1×1 convolution to the k² corrections, which starts at
zero, so an untrained network is the block mean exactly. The default k = 3s reaches s HR
pixels beyond the block on each side (a Gaussian blur of σ = s/2 to 2σ).

:func:`fit_kernels` trains it against a *target LR*: the LR that a run of the field with
``degradation: <target>`` sees — a known operator that is not the block mean (``gaussian``
blur-and-subsample, ``bicubic``), or the field's real coarse data where it has some
(``options.lr_path`` of a gridded field, which then supplies the LR whatever the
operator). It is fitted on the training split, scored on the held-out test split (RMSE
against the target LR, next to the block mean's and bicubic's), and written by
:func:`save_kernels` as a torch state dict (``torch.save``; ``torch.load(...,
weights_only=True)`` reads it) with a JSON record of its settings and scores inside the
same zip archive, which a spec's check reads without torch. ``scalelab fit-kernels``
is the command.

A sweep then uses it as its degradation, ``degradation: learned_kernel`` with
``options.kernel_path`` naming the file: the data's LR is made by it, and so is the
``downscale_consistency`` loss's (the run's operator, whichever it is).
"""

from __future__ import annotations

import functools
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from scalelab._errors import ScalelabError

from scalelab.data.kernel_files import RECORD, read_record, resolve_kernel_path  # noqa: F401


class KernelNet(nn.Module):
    """Per-pixel, per-channel HR→LR resampling kernels predicted from the HR (see module)."""

    def __init__(self, scale: int = 4, kernel_size: int | None = None, width: int = 8,
                 depth: int = 2):
        super().__init__()
        kernel_size = 3 * scale if kernel_size is None else kernel_size
        if kernel_size < scale or (kernel_size - scale) % 2:
            raise ScalelabError(f"kernel_size must be at least the scale ({scale}) and differ "
                                f"from it by an even number (the window is centred on the "
                                f"block), got {kernel_size}.")
        self.scale, self.kernel_size, self.width, self.depth = scale, kernel_size, width, depth
        layers: list[nn.Module] = []
        c_in = 1
        for _ in range(depth):
            layers += [nn.Conv2d(c_in, width, 3, padding=1, padding_mode="reflect"),
                       nn.LeakyReLU(0.2)]
            c_in = width
        layers += [nn.Conv2d(c_in, width, scale, stride=scale), nn.LeakyReLU(0.2),
                   nn.Conv2d(width, kernel_size ** 2, 1)]
        self.net = nn.Sequential(*layers)
        last = self.net[-1]
        nn.init.zeros_(last.weight)  # untrained: the block mean
        nn.init.zeros_(last.bias)
        pad = (kernel_size - scale) // 2
        base = torch.zeros(kernel_size, kernel_size)
        base[pad:pad + scale, pad:pad + scale] = 1.0 / scale ** 2
        self.register_buffer("base", base.flatten(), persistent=False)

    def kernels(self, hr: torch.Tensor) -> torch.Tensor:
        """The kernels ``(B·C, k², H/s, W/s)`` (each sums to 1) of ``hr`` ``(B, C, H, W)``."""
        x = hr.reshape(-1, 1, *hr.shape[-2:])
        correction = self.net(x)
        correction = correction - correction.mean(1, keepdim=True)
        return self.base.to(correction.dtype)[None, :, None, None] + correction

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        """The LR of ``(..., H, W)``: ``(..., H/s, W/s)``."""
        lead, (height, width) = hr.shape[:-2], hr.shape[-2:]
        s, k = self.scale, self.kernel_size
        if height % s or width % s:
            raise ScalelabError(f"scale {s} does not divide the field size {(height, width)}; "
                                f"crop the field or choose another scale.")
        x = hr.reshape(-1, 1, height, width)
        pad = (k - s) // 2
        if pad >= min(height, width):
            raise ScalelabError(f"kernel_size {k} is too wide for a {(height, width)} field.")
        kernels = self.kernels(x)  # (N, k², h, w)
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect") if pad else x
        patches = F.unfold(padded, k, stride=s)  # (N, k², h·w)
        out = (patches * kernels.flatten(2)).sum(1)
        return out.reshape(*lead, height // s, width // s)


@dataclass
class FittedKernels:
    """A fitted :class:`KernelNet` with what it was fitted on and its held-out scores."""

    network: KernelNet
    settings: dict
    fidelity: dict = field(default_factory=dict)  # RMSE vs the target LR on the test split

    def record(self) -> dict:
        return {"kind": "scalelab learned kernels", "version": 1,
                "settings": self.settings, "fidelity": self.fidelity}


def _rmse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.double() - b.double()) ** 2).mean().sqrt())


def fit_kernels(field: str = "precip", scale: int = 4, target: str = "gaussian",
                options: dict | None = None, field_size: int = 32, samples: int = 512,
                test_samples: int = 128, steps: int = 400, batch_size: int = 32,
                lr: float = 3e-3, kernel_size: int | None = None, width: int = 8,
                depth: int = 2, seed: int = 0) -> FittedKernels:
    """Fit the kernels of ``field`` to its target LR (made by the ``target`` degradation,
    or read from ``options.lr_path``), deterministically on the CPU; scored on held-out
    test fields against the block mean and bicubic downsampling of the same HR."""
    from scalelab.data.degrade import bicubic, block_mean
    from scalelab.data.names import DEGRADATIONS
    from scalelab.data.pairs import make_pairs, make_test_pairs

    options = dict(options or {})
    if target == "learned_kernel" or target not in DEGRADATIONS:
        valid = ", ".join(d for d in DEGRADATIONS if d != "learned_kernel")
        raise ScalelabError(f"the target of fitted kernels must be a fixed degradation ({valid}"
                            f"), or a field's coarse data through options.lr_path; got "
                            f"{target!r}.")
    for name, value in (("steps", steps), ("samples", samples), ("test_samples", test_samples),
                        ("batch_size", batch_size), ("width", width), ("depth", depth)):
        if not isinstance(value, int) or value < 1:
            raise ScalelabError(f"{name} must be a positive integer, got {value!r}.")
    network = KernelNet(scale, kernel_size, width, depth)  # checks kernel_size first
    (lr_train, hr_train), _ = make_pairs(field, samples, 1, field_size, scale, target,
                                         options=options)
    lr_test, hr_test = make_test_pairs(field, test_samples, field_size, scale, target,
                                       options=options)
    channels = hr_train.shape[1]
    lr_train, lr_test = lr_train[:, :channels], lr_test[:, :channels]  # the target's LR
    hr_train, hr_test = hr_train.nan_to_num(0.0), hr_test.nan_to_num(0.0)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    for step in range(steps):
        for group in optimizer.param_groups:  # cosine decay to 0
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(0, samples, (batch_size,), generator=gen)
        loss = F.mse_loss(network(hr_train[idx]), lr_train[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    network.eval()
    with torch.no_grad():
        fidelity = {"learned_kernel": _rmse(network(hr_test), lr_test),
                    "block_mean": _rmse(block_mean(hr_test, scale), lr_test),
                    "bicubic": _rmse(bicubic(hr_test, scale), lr_test)}
    settings = {"field": field, "scale": scale, "target": target, "options": options,
                "field_size": field_size, "samples": samples, "test_samples": test_samples,
                "steps": steps, "batch_size": batch_size, "lr": lr,
                "kernel_size": network.kernel_size, "width": width, "depth": depth,
                "seed": seed}
    return FittedKernels(network, settings, fidelity)


def save_kernels(fitted: FittedKernels, path) -> Path:
    """Write the fitted kernels: ``torch.save`` of ``{"state_dict", "settings"}`` with the
    JSON record (settings, held-out fidelity) added to its zip archive."""
    from scalelab._files import temporary_path, writable_folder

    path = Path(path)
    writable_folder(path, "kernels")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        torch.save({"state_dict": fitted.network.state_dict(),
                    "settings": json.loads(json.dumps(fitted.settings))}, tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            root = archive.namelist()[0].split("/")[0]
            archive.writestr(f"{root}/{RECORD}", json.dumps(fitted.record(), indent=1))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> KernelNet:
    record = read_record(path)["settings"]
    state = torch.load(path, map_location="cpu", weights_only=True)
    network = KernelNet(record["scale"], record["kernel_size"], record["width"],
                        record["depth"])
    network.load_state_dict(state["state_dict"])
    network.eval()
    for p in network.parameters():
        p.requires_grad_(False)
    return network


def load_kernels(path) -> KernelNet:
    """The fitted :class:`KernelNet` of a kernels file (cached; its weights frozen)."""
    path = resolve_kernel_path(path)
    return _load(str(path), path.stat().st_mtime)


def learned_kernel(hr: torch.Tensor, scale: int, kernel_path=None) -> torch.Tensor:
    """The degradation ``learned_kernel``: the fitted kernels of ``kernel_path`` applied to
    ``(..., H, W)`` (differentiable in ``hr``; the kernels' own weights stay fixed)."""
    if kernel_path is None:
        raise ScalelabError("degradation learned_kernel needs options.kernel_path, the file "
                            "scalelab fit-kernels writes.")
    network = load_kernels(kernel_path)
    if network.scale != scale:
        raise ScalelabError(f"{kernel_path}: the kernels were fitted for scale "
                            f"{network.scale}, not {scale}; fit them for this scale.")
    network = network.to(device=hr.device, dtype=hr.dtype if hr.is_floating_point()
                         else torch.float32)
    return network(hr)


def describe(fitted: FittedKernels) -> str:
    """The held-out fidelity in one line."""
    f = fitted.fidelity
    return (f"held-out LR RMSE against the {fitted.settings['target']} target: learned kernels "
            f"{f['learned_kernel']:.4g}, block mean {f['block_mean']:.4g}, bicubic "
            f"{f['bicubic']:.4g}")


__all__ = ["KernelNet", "FittedKernels", "fit_kernels", "save_kernels", "load_kernels",
           "read_record", "learned_kernel"]
