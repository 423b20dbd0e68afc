"""Adversarial training (SRGAN, Ledig et al. 2017): the discriminator, its optimiser, its step.

A run with ``adversarial_weight`` w > 0 trains its network (the generator) on

    L_G = content + w · softplus(−D(ŷ)) + f · Σ_i mean |D_i(y) − D_i(ŷ)|

and, after each generator step, its discriminator on the same batch,

    L_D = softplus(−D(y)) + softplus(D(ŷ)),

both averaged over the batch: the non-saturating GAN loss (Goodfellow et al. 2014, §3;
SRGAN's −log D(G(x)), eq. 6) on the discriminator's logits. The content term is the
run's own ``loss_variant`` (a pixel loss, or a CRPS on an ensemble, whose every member
the discriminator judges), so nothing needs downloaded weights (SRGAN's VGG loss does);
f (``options.feature_matching``, default 0) adds feature matching on the
discriminator's own stages (Salimans et al. 2016, §3.1; Wang et al. 2018, pix2pixHD,
eq. 4), the content loss that needs no pretrained network. The discriminator
(:mod:`scalelab.models.discriminator`) is sized from the generator's width and depth
(``options.discriminator_width`` scales it) and trained by the run's optimiser kind at
``options.discriminator_lr`` (default: the run's ``lr``) on the run's schedule.

Its weights and optimiser state are in the run's checkpoint, so a killed adversarial
run resumes bit-equal like any other. What a run records: ``params`` (N) stays the
generator's — the discriminator is a training-time cost, not part of the downscaling
network — and ``info["discriminator_params"]`` holds the discriminator's; ``flops``
counts both: ``flops_per_sample`` adds the discriminator's forward FLOPs times its
evaluations per sample (:func:`evaluations`), and the row's ``flops`` is 3 × that ×
samples seen like every run's (forward + backward ≈ 3 × forward, Kaplan et al. 2020).
``train_loss`` is the generator's whole loss, adversarial term included; ``val_loss``
is the content loss alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scalelab._declare import defaults
from scalelab.registry import ADVERSARIAL_OPTIONS


def adversarial_options(options: dict) -> dict:
    """The adversarial settings of a run's ``options``, defaults filled in."""
    return {**defaults(ADVERSARIAL_OPTIONS),
            **{k: v for k, v in (options or {}).items() if k in ADVERSARIAL_OPTIONS}}


def build_discriminator(cfg, channels: int):
    """The discriminator of ``cfg``'s network (``channels``: the target's)."""
    from scalelab.models.discriminator import discriminator_for

    return discriminator_for(channels, cfg.width, cfg.depth,
                             adversarial_options(cfg.options)["discriminator_width"])


def evaluations(fakes_per_sample: int, feature_matching: bool) -> int:
    """Discriminator evaluations a training sample costs: its ``fakes_per_sample`` generated
    fields (the ensemble's members, or one) judged in the generator's step and again in the
    discriminator's, its real field in the discriminator's step, and once more for feature
    matching."""
    return 2 * fakes_per_sample + 1 + int(feature_matching)


class Adversary:
    """The discriminator side of one run: ``generator_loss(pred, hr)`` is the generator's
    adversarial term (add it to the content loss), ``step(lr)`` then trains the
    discriminator on that batch; ``state_dict``/``load_state_dict`` go in the checkpoint."""

    def __init__(self, cfg, channels: int, device, memory_format=torch.contiguous_format,
                 autocast=None, masked: bool = False):
        settings = adversarial_options(cfg.options)
        self.weight = float(cfg.adversarial_weight)
        self.feature_matching = float(settings["feature_matching"])
        self.lr_ratio = (settings["discriminator_lr"] or cfg.lr) / cfg.lr
        self.discriminator = build_discriminator(cfg, channels).to(device,
                                                                  memory_format=memory_format)
        opt_cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
        self.optimizer = opt_cls[cfg.optimizer](self.discriminator.parameters(), lr=cfg.lr,
                                                weight_decay=cfg.weight_decay)
        self.memory_format = memory_format
        self.autocast = autocast or torch.autocast(torch.device(device).type, enabled=False)
        self.masked = masked
        # torch.compile of the discriminator's evaluation (logits and stage outputs)
        self._features = (torch.compile(self.discriminator.features) if cfg.compile
                          else self.discriminator.features)
        self._pending = None  # (generated, real) of the last generator_loss, for step

    def _fields(self, pred: torch.Tensor, hr: torch.Tensor):
        """The generated fields ``(B·M, C, H, W)`` and the real ones ``(B, C, H, W)``; missing
        target pixels set to 0 in both (they tell the discriminator nothing)."""
        if self.masked:
            from scalelab.train.fieldmetrics import fill_masked

            pred, hr = fill_masked(pred, hr)
        fake = pred.reshape(-1, *hr.shape[1:]) if pred.dim() == hr.dim() + 1 else pred
        return (fake.contiguous(memory_format=self.memory_format),
                hr.to(fake.dtype).contiguous(memory_format=self.memory_format))

    def generator_loss(self, pred: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """w · softplus(−D(ŷ)) (+ f · feature matching) of the batch's prediction ``pred``
        (``(B, C, H, W)``, or the ensemble ``(B, M, C, H, W)``, every member judged)."""
        fake, real = self._fields(pred, hr)
        self.discriminator.requires_grad_(False)  # the generator's step: no weight gradients
        try:
            logits, fake_features = self._features(fake)
            loss = self.weight * F.softplus(-logits.float()).mean()
            if self.feature_matching > 0:
                with torch.no_grad():
                    _, real_features = self._features(real)
                members = fake.shape[0] // real.shape[0]
                matching = sum((f.float() - r.float().repeat_interleave(members, 0)).abs().mean()
                               for f, r in zip(fake_features, real_features))
                loss = loss + self.feature_matching * matching
        finally:
            self.discriminator.requires_grad_(True)
        self._pending = (fake.detach(), real)
        return loss

    def step(self, lr: float) -> torch.Tensor:
        """One discriminator step on the last batch ``generator_loss`` saw, at the rate of the
        run's schedule ``lr`` (× discriminator_lr / lr); returns its loss (on the device)."""
        fake, real = self._pending
        self._pending = None
        for group in self.optimizer.param_groups:
            group["lr"] = lr * self.lr_ratio
        with self.autocast:
            loss = (F.softplus(-self._features(real)[0].float()).mean()
                    + F.softplus(self._features(fake)[0].float()).mean())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def state_dict(self) -> dict:
        return {"discriminator": self.discriminator.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])


def discriminator_size(cfg, channels: int, hr_shape: tuple, fakes_per_sample: int) -> dict:
    """``discriminator_params`` and ``discriminator_flops_per_sample`` (its forward FLOPs × its
    :func:`evaluations` per training sample) of ``cfg``'s discriminator on HR fields of
    ``hr_shape`` (C, H, W), counted by torch's FLOP counter like the generator."""
    from scalelab.models import count_params, forward_flops

    model = build_discriminator(cfg, channels)
    feature_matching = adversarial_options(cfg.options)["feature_matching"] > 0
    return {"discriminator_params": count_params(model),
            "discriminator_flops_per_sample": forward_flops(model, tuple(hr_shape))
            * evaluations(fakes_per_sample, feature_matching)}
