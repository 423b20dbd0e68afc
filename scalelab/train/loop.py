"""One training run, read top to bottom.

build data → build model, loss, optimiser → (resume from a checkpoint) → step;
every ``eval_every`` steps evaluate and record a curve row; every
``checkpoint_every`` steps write a checkpoint → finish. No callbacks hide what
happens at a step; the sweep machinery (stores, executors, tracking) lives outside,
in ``scalelab.sweep``, and receives the rows this returns (or streams through
``on_row``).

A curve row holds: ``step``, ``samples_seen`` (D, steps × batch), ``samples`` (U, the
distinct training samples), ``epochs`` (D/U), ``flops`` (training FLOPs so far,
3 × forward FLOPs per sample × samples seen: forward + backward ≈ 3 × forward,
Kaplan et al. 2020 §2.1), ``lr`` (of the last step taken), ``train_loss`` (mean
over the steps since the last row), ``wall_time_s``, and the validation metrics of
:mod:`scalelab.train.metrics` (``val_loss`` in the run's own loss, ``val_mse``,
``val_rmse``, ``val_mae``, ``val_psnr``, ``val_ssim``, ``val_spectrum_error``,
``val_p99_bias``, ``val_p999_bias``; for ensembles also ``val_crps`` and the
calibration of exceedance probabilities), and the same skill of bicubic upsampling of the
coarse input (``val_bicubic_loss``, ``val_bicubic_mse``, …, :func:`evaluate_bicubic`),
the reference a downscaling is first compared with, computed once per run.

Learning-rate schedules (:func:`lr_at`): ``constant``; ``cosine`` (Loshchilov &
Hutter 2017, SGDR eq. 5 without restarts, from ``lr`` to 0); ``wsd``
(warmup-stable-decay, Hu et al. 2024 "MiniCPM" §4; Hägele et al. 2024: hold ``lr``,
then decay linearly to 0 over the last ``options["decay_fraction"]`` (default 0.2)
of the steps after warmup, or from ``branch_step`` on when that is set). All three
start with a linear warmup of ``warmup_steps``.

Data budgets from one trunk (Hägele et al. 2024 §4; Subramanian et al. 2026): a
*trunk* (``schedule: wsd`` with ``cooldowns``) holds the rate constant after warmup
and, at each cooldown point, writes a branch checkpoint; a *branch* (``parent`` set)
starts from its trunk's checkpoint at ``branch_step`` and decays linearly to 0 by its
own ``steps``. Its curve holds the trunk's rows up to the branch point, and its rows
count steps, samples seen and FLOPs from step 0, trunk part included, so the branch
is, row for row, the run that trains its schedule from scratch (it is, bit for bit,
on the CPU) — at the cost of its decay only.

Precision (Kumar et al. 2024; Dremov et al. 2025): ``amp: bf16`` runs forward and loss
under bf16 autocast, on CUDA or the CPU (fp32 otherwise); ``weight_bits``/``act_bits``
fake-quantize every conv/linear layer's weights/inputs to k bits with a straight-through
gradient (:mod:`scalelab.models.quant`) for the last ``qat_fraction`` of the steps (all
of them by default): full precision first, then QAT, each phase with its own learning-rate
schedule (``qat_schedule: split``), or QAT over the decay of one WSD schedule
(``fused``). Evaluations after the QAT start score the quantized network, so a QAT run's
result is its quantized model's.

Speed switches (for CUDA; each a field of the config): ``channels_last`` stores activations NHWC,
``compile`` wraps the network in ``torch.compile`` (a generative family compiles its
denoiser in place, ``model.compile_parts()``). The data are generated on the
run's device. A non-finite training loss ends the run as ``diverged`` at that step;
the loss is read back to the host only at evaluation and checkpoint steps, so the
GPU is not stalled every step.

Adversarial training (``adversarial_weight`` > 0; SRGAN): the run's loss is the content
term and :class:`~scalelab.train.adversarial.Adversary` adds the discriminator's term; after
each step of the network the discriminator takes its own, on the same batch, and its
weights and optimiser are in the checkpoint. A loss with a ``kl`` term (FuXi-ENS,
``crps_fair + 0.1*kl``) trains the VAE perturbation (:func:`make_model`); the loss is bound
to the network (``loss.bind(model)``) to read its latent.

Generative families (``diffusion``): the model trains by its own objective,
``model.training_loss(lr, hr)`` (:func:`training_step_loss`, the one place the loop
branches on the family); the run's ``loss_variant`` is then what ``val_loss`` reports
on the samples. ``flops`` counts the training forward (one denoiser evaluation per
sample); ``info["sample_flops"]`` is the cost of one evaluated sample (all the
sampler's steps), which the ensemble metrics pay ``ensemble_members`` times. A learned
rescaling (``irn``) also records ``val_lr_rmse`` and ``val_recon_rmse``, its own LR's
fidelity and the HR reconstructed from it (``model.rescaling_metrics``).

Real fields (``scalelab.data.make_run_data``): the input may have several channels
(the target's LR, predictors, static fields) and the target several (RGB photos);
the validation metrics are computed in physical units (after the inverse of the
data's transform), latitude-weighted on global grids, and missing target values are
ignored by the loss and the metrics (:mod:`scalelab.train.fieldmetrics`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from scalelab._errors import ScalelabError
from scalelab.config import RunConfig
from scalelab.data import make_run_data
from scalelab.data.options import channels_of
from scalelab.losses import get_loss
from scalelab.models import build_model, count_params, forward_flops, training_flops
from scalelab.models.names import family_options
from scalelab.models.quant import attach_quantizers, set_quantized
from scalelab.registry import LATENT_OPTIONS
from scalelab.result import RunResult
from scalelab.train import fieldmetrics, metrics, regions
from scalelab.train.checkpoint import (branch_filename, load_checkpoint, rng_state,
                                       save_checkpoint, set_rng_state)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(step: int, cfg: RunConfig) -> float:
    """Learning rate at ``step`` (0-based) for the config's schedule.

    An FP-then-QAT run with ``qat_schedule: split`` (Dremov et al. 2025, §3) trains each
    phase with the schedule of its own length: the full-precision phase warms up and
    decays over its steps, then the QAT phase warms up and decays again over its own.
    """
    start = cfg.qat_start()
    if cfg.quantized and cfg.qat_schedule == "split" and 0 < start < cfg.steps:
        phase = dataclasses.replace(cfg, weight_bits=0, act_bits=0, qat_fraction=1.0,
                                    steps=start if step < start else cfg.steps - start)
        phase = dataclasses.replace(phase, warmup_steps=min(cfg.warmup_steps, phase.steps - 1))
        return lr_at(step if step < start else step - start, phase)
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "wsd" and cfg.role == "trunk":  # constant; branches decay
        return cfg.lr
    if cfg.schedule == "wsd" and cfg.branch_step:  # linear decay from branch_step to 0 at steps
        if step < cfg.branch_step:
            return cfg.lr
        return cfg.lr * (cfg.steps - step) / (cfg.steps - cfg.branch_step)
    if cfg.schedule == "wsd":  # warmup-stable-decay: linear decay to 0 over the last fraction
        decay_fraction = float(cfg.options.get("decay_fraction", 0.2))
        decay_from = 1.0 - decay_fraction
        return cfg.lr if progress < decay_from else cfg.lr * (1 - progress) / decay_fraction
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def make_model(cfg: RunConfig) -> torch.nn.Module:
    """The network of the config: the stochastic variant of the family when M > 1 (the VAE
    perturbation when the loss has a ``kl`` term, ``options.latent_channels`` of latent).

    Its input and output channels are those of the config's data (predictors, static
    fields, RGB: :func:`scalelab.data.options.channels_of`).
    """
    in_channels, channels = channels_of(cfg.field, cfg.options)
    io = {} if (in_channels, channels) == (1, 1) else {"channels": channels,
                                                       "in_channels": in_channels}
    options = family_options(cfg.family, cfg.options)
    # a loss that scores the latent (kl): the VAE perturbation of FuXi-ENS
    latent = {"perturbation": "vae", "noise_channels": int(
        cfg.options.get("latent_channels", LATENT_OPTIONS["latent_channels"].default))} \
        if cfg.loss.needs_latent else {}
    model = build_model(cfg.family, cfg.width, cfg.depth, cfg.scale,
                        stochastic=cfg.ensemble_members > 1, **io, **latent, **options)
    if cfg.parametrization == "mup":  # μP relative to the same network at base_width
        from scalelab.models.mup import apply_mup

        base = build_model(cfg.family, cfg.base_width, cfg.depth, cfg.scale,
                           stochastic=cfg.ensemble_members > 1, **io, **latent, **options)
        model.lr_multipliers = apply_mup(model, base)
    if cfg.quantized:  # switched on and off by the loop (train_quantized)
        attach_quantizers(model, cfg.weight_bits, cfg.act_bits)
    return model


def train_quantized(cfg: RunConfig, done: int) -> bool:
    """Whether the network is fake-quantized after ``done`` steps, for the next step and
    for an evaluation then: from the QAT start on (``cfg.qat_start()``); an evaluation of
    a run that has trained quantized scores the quantized network."""
    return cfg.quantized and done >= cfg.qat_start()


def run_size(cfg: RunConfig, model: torch.nn.Module | None = None,
             input_shape: tuple | None = None, loss_fn=None) -> dict:
    """What a run counts, from its config: ``params`` (N, the network :func:`make_model`
    builds — a stochastic variant's noise input included), ``flops_per_sample`` (the
    training FLOPs of one sample: one forward per ensemble member under an ensemble loss,
    one evaluation of the objective for a generative family) and, for a generative
    family, ``sample_flops``; an adversarial run (``adversarial_weight`` > 0) also has its
    discriminator's ``discriminator_params`` and ``discriminator_flops_per_sample``, which
    ``flops_per_sample`` includes (N stays the generator's; :mod:`scalelab.train.adversarial`).
    The training loop and ``scalelab sweep plan`` both count with it, so a plan says what
    the run will record. ``model``, ``input_shape`` (one LR
    sample's (C, H, W)) and ``loss_fn`` are built from ``cfg`` when not given."""
    model = make_model(cfg) if model is None else model
    if input_shape is None:
        lr_size = cfg.field_size // cfg.scale
        input_shape = (channels_of(cfg.field, cfg.options)[0], lr_size, lr_size)
    loss_fn = make_loss(cfg) if loss_fn is None else loss_fn
    generative = is_generative(model)
    members = cfg.ensemble_members if getattr(loss_fn, "needs_ensemble", False) \
        and not generative else 1
    size = {"params": count_params(model),
            "flops_per_sample": training_flops(model, tuple(input_shape)) * members,
            "sample_flops": forward_flops(model, tuple(input_shape)) if generative else None}
    if cfg.adversarial_weight > 0:
        from scalelab.train.adversarial import discriminator_size

        channels = channels_of(cfg.field, cfg.options)[1]
        hr_shape = (channels, input_shape[1] * cfg.scale, input_shape[2] * cfg.scale)
        size.update(discriminator_size(cfg, channels, hr_shape, members))
        size["flops_per_sample"] += size["discriminator_flops_per_sample"]
    return size


def make_loss(cfg: RunConfig):
    """The loss of the config (its parsed loss, checked with the config: an ensemble loss has
    ensemble_members >= 2); losses that depend on the degradation receive it, with its
    settings (``downscale_consistency`` coarsens by the run's operator, learned or fixed)."""
    options = {key: cfg.options.get(key) for key in ("blur_sigma", "kernel_path")}
    return get_loss(cfg.loss, scale=cfg.scale, degradation=cfg.degradation,
                    degradation_options=options)


def make_optimizer(cfg: RunConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The config's optimiser; under μP one parameter group per learning-rate multiplier
    (``group["lr_multiplier"]``, which the loop's schedule multiplies)."""
    opt_cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    if cfg.parametrization != "mup":
        return opt_cls[cfg.optimizer](model.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
    from scalelab.models.mup import lr_multipliers

    multipliers, groups = lr_multipliers(model), {}
    for name, param in model.named_parameters():
        groups.setdefault(multipliers[name], []).append(param)
    return opt_cls[cfg.optimizer](
        [{"params": params, "lr": cfg.lr * m, "lr_multiplier": m}
         for m, params in groups.items()], lr=cfg.lr, weight_decay=cfg.weight_decay)


def predict(model, forward, lr: torch.Tensor, members: int, ensemble: bool) -> torch.Tensor:
    """What the loss sees: ``(B, M, C, H, W)`` members for an ensemble loss, else ``(B, C, H, W)``."""
    return model.sample(lr, members) if ensemble else forward(lr)


def is_generative(model) -> bool:
    """A family that trains by its own objective and samples by itself (diffusion)."""
    return hasattr(model, "training_loss")


def compile_model(model):
    """``torch.compile`` of the network the loop calls; a generative family compiles its
    parts in place (its sampler's loop stays eager) and is called as it is."""
    if hasattr(model, "compile_parts"):
        model.compile_parts()
        return model
    return torch.compile(model)


def training_step_loss(model, forward, loss_fn, lr_b, hr_b, members: int, ensemble: bool,
                       masked: bool = False, adversary=None):
    """The loss of one training batch: the family's own objective for a generative family,
    else the run's loss on the prediction (an ensemble of ``members`` for an ensemble loss).

    ``masked``: ``hr_b`` has missing values (NaN), which add nothing to the loss; a
    generative family, whose objective sees the target itself, gets them filled with the
    bilinear upsampling of the LR input (so they carry no signal to learn).

    ``adversary``: an adversarial run's :class:`~scalelab.train.adversarial.Adversary`, whose
    term on the prediction is added (its ``step`` then trains the discriminator).
    """
    if is_generative(model):
        if masked:
            base = torch.nn.functional.interpolate(
                lr_b[:, :hr_b.shape[1]].float(), size=hr_b.shape[-2:], mode="bilinear",
                align_corners=False).to(hr_b.dtype)
            hr_b = torch.where(torch.isnan(hr_b), base, hr_b)
        return model.training_loss(lr_b, hr_b)
    pred = predict(model, forward, lr_b, members, ensemble).float()
    adversarial = adversary.generator_loss(pred, hr_b) if adversary is not None else 0.0
    if masked:  # missing target pixels add nothing to the loss
        pred, hr_b = fieldmetrics.fill_masked(pred, hr_b)
    return loss_fn(pred, hr_b, lr_b) + adversarial


@torch.no_grad()
def evaluate(model, forward, loss_fn, lr_val, hr_val, data_range: float, members: int = 1,
             threshold: float | None = None, autocast=None, ref: dict | None = None,
             seed: int = 0, batch_size: int = 256, to_physical=None,
             weights: torch.Tensor | None = None, masked: bool = False) -> dict:
    """Validation loss and metrics of the model on the whole validation set.

    ``ref``: :func:`scalelab.train.fieldmetrics.reference` of the physical ``hr_val``,
    computed once per run. ``to_physical``: model space → physical units for the metrics
    (default: none); ``weights``: latitude weights of the rows; ``masked``: ``hr_val``
    has missing values (NaN) for the loss and metrics to ignore.
    """
    ensemble_loss = getattr(loss_fn, "needs_ensemble", False)
    # the same noise at every evaluation, drawn apart from the training noise
    noise = torch.Generator(device="cpu").manual_seed(seed) if members > 1 else None
    model.eval()
    loss_sum, preds, ensembles = 0.0, [], []
    for i in range(0, lr_val.shape[0], batch_size):
        lr_b, hr_b = lr_val[i:i + batch_size], hr_val[i:i + batch_size]
        with autocast or torch.autocast(lr_b.device.type, enabled=False):
            if members > 1:
                ens = model.sample(lr_b, members, generator=noise).float()  # (B, M, C, H, W)
                ensembles.append(ens)
                pred = ens.mean(1)  # deterministic skill of the ensemble mean
                scored = ens if ensemble_loss else model(lr_b, generator=noise).float()
            else:
                pred = scored = forward(lr_b).float()
            if masked:
                scored, hr_b = fieldmetrics.fill_masked(scored, hr_b)
            loss_sum += float(loss_fn(scored, hr_b, lr_b)) * lr_b.shape[0]
        preds.append(pred)
    model.train()
    physical = to_physical or (lambda x: x)
    pred, target = physical(torch.cat(preds)), physical(hr_val)
    row = {"val_loss": loss_sum / lr_val.shape[0],
           **fieldmetrics.deterministic_metrics(pred, target, data_range, ref, weights)}
    if members > 1:
        row.update(fieldmetrics.ensemble_metrics(physical(torch.cat(ensembles)), target,
                                                 threshold, seed))
    return row


@dataclass
class StartingPoint:
    """Where a run starts: ``saved`` (the checkpoint it continues from, or None: step 0),
    ``resumed_from`` (its own checkpoint's step), ``branched_from`` (a branch: its trunk's
    step), ``branch_points`` (a trunk: the steps it writes branch checkpoints at) and
    ``ended`` (the result of a run that had already ended, handed back as it is)."""

    saved: dict | None = None
    resumed_from: int | None = None
    branched_from: int | None = None
    branch_points: set = field(default_factory=set)
    ended: RunResult | None = None


def starting_point(cfg: RunConfig, checkpoint_dir=None, trunk_dir=None,
                   warnings: list | None = None) -> StartingPoint:
    """Resume or branch: the checkpoint a run starts from (see :func:`train`).

    Its own last checkpoint first (a run that had ended is handed back); a trunk's latest
    branch checkpoint past it (branch checkpoints are full checkpoints too); a branch with
    no checkpoint of its own starts from its trunk's checkpoint at ``branch_step``. An
    unreadable checkpoint adds a sentence to ``warnings`` and is passed over.
    """
    warnings = [] if warnings is None else warnings
    saved = (load_checkpoint(checkpoint_dir, cfg.run_id, warnings=warnings)
             if checkpoint_dir is not None else None)
    if saved is not None and saved["status"] != "running":
        return StartingPoint(ended=RunResult(cfg.run_id, saved["status"], saved["rows"],
                                             saved["info"]))
    branch_points = set(cfg.cooldown_steps()) if cfg.role == "trunk" else set()
    if checkpoint_dir is not None:
        for point in sorted(branch_points, reverse=True):
            if saved is not None and saved["step"] >= point:
                break
            state = load_checkpoint(checkpoint_dir, cfg.run_id, branch_filename(point),
                                    warnings=warnings)
            if state is not None:
                saved = state
                break
    start = StartingPoint(saved, saved["step"] if saved is not None else None,
                          branch_points=branch_points)
    if saved is None and cfg.role == "branch" and trunk_dir is not None:
        saved = load_checkpoint(trunk_dir, cfg.parent, branch_filename(cfg.branch_step),
                                warnings=warnings)
        if saved is not None:
            if saved["step"] != cfg.branch_step:
                raise ScalelabError(f"the branch checkpoint in {trunk_dir} is at step "
                                    f"{saved['step']}, not {cfg.branch_step}; it is not this "
                                    f"branch's trunk.")
            start.saved, start.branched_from = saved, cfg.branch_step
    return start


@torch.no_grad()
def evaluate_bicubic(loss_fn, lr_val, hr_val, data_range: float, members: int = 1,
                     ref: dict | None = None, batch_size: int = 256, to_physical=None,
                     weights: torch.Tensor | None = None, masked: bool = False) -> dict:
    """The skill of plain bicubic upsampling of the coarse input on the validation set,
    ``val_bicubic_<metric>``: ``val_bicubic_loss`` (the run's own loss, an ensemble loss
    given M identical members), the deterministic metrics of :func:`evaluate` in physical
    units, and for ensemble runs ``val_bicubic_crps`` (the CRPS of a point forecast is its
    absolute error, Gneiting & Raftery 2007 §4.2). The same for every step: once per run."""
    ensemble_loss = getattr(loss_fn, "needs_ensemble", False)
    size, channels = tuple(hr_val.shape[-2:]), hr_val.shape[1]
    loss_sum, preds = 0.0, []
    for i in range(0, lr_val.shape[0], batch_size):
        lr_b, hr_b = lr_val[i:i + batch_size], hr_val[i:i + batch_size]
        pred = metrics.bicubic_upsample(lr_b, size, channels).to(hr_b.dtype)
        scored = pred.unsqueeze(1).expand(-1, members, -1, -1, -1) if ensemble_loss else pred
        if masked:
            scored, hr_b = fieldmetrics.fill_masked(scored, hr_b)
        loss_sum += float(loss_fn(scored, hr_b, lr_b)) * lr_b.shape[0]
        preds.append(pred)
    physical = to_physical or (lambda x: x)
    pred, target = physical(torch.cat(preds)), physical(hr_val)
    row = {"loss": loss_sum / lr_val.shape[0],
           **{k.removeprefix("val_"): v for k, v in fieldmetrics.deterministic_metrics(
               pred, target, data_range, ref, weights).items()}}
    if members > 1:
        valid = torch.isfinite(target)
        row["crps"] = float((pred.to(torch.float64) - target.to(torch.float64))[valid]
                            .abs().mean())
    return {f"val_bicubic_{k}": v for k, v in row.items()}


def train(cfg: RunConfig, on_row: Callable[[dict], None] | None = None,
          checkpoint_dir=None, trunk_dir=None) -> RunResult:
    """Train one network as ``cfg`` says and return its curve.

    ``checkpoint_dir``: a folder for this run's checkpoint (None: no checkpointing).
    If it holds a checkpoint of this run, the run resumes from it and returns the
    same full curve as an uninterrupted run; ``on_row`` then receives the checkpoint's
    rows again first (so a W&B run resumed in this process logs the whole curve; the
    store replaces a row it has), then those computed in this call. A run that had
    ended is handed back without any. A trunk writes its branch checkpoints there too.

    ``trunk_dir``: for a branch, its trunk's checkpoint folder; the branch starts
    from the trunk's checkpoint at ``branch_step`` (``info["branched_from_step"]``).
    Without one it trains the trunk's part itself (the same curve, at full cost).
    """
    if not cfg.validated:  # a sweep's configs were checked when the spec loaded
        cfg.validate(source=f"run {cfg.run_id}")
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    if cfg.amp == "bf16" and device.type not in ("cuda", "cpu"):
        raise ScalelabError(f"amp: bf16 runs on cuda or cpu, not {device.type}; set amp: none.")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fastest convolution algorithms for fixed shapes
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(cfg.seed)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")
    members = cfg.ensemble_members

    # data: D training pairs and a validation set that does not depend on D, made on the device
    data = make_run_data(
        cfg.field, cfg.samples, cfg.val_samples, cfg.field_size, cfg.scale,
        cfg.degradation, data_seed=0, device=device, options=cfg.options,
    )
    (lr_train, hr_train), (lr_val, hr_val) = data.train, data.val
    lr_train = lr_train.contiguous(memory_format=memory_format)
    lr_val = lr_val.contiguous(memory_format=memory_format)
    # metrics in physical units: R of PSNR and SSIM, the truth's spectrum and percentiles,
    # and the exceedance threshold of ensembles (90th percentile of the truth), once per run
    hr_val_physical = data.to_physical(hr_val)
    data_range = fieldmetrics.data_range(hr_val_physical)
    val_reference = fieldmetrics.reference(hr_val_physical)
    threshold = cfg.options.get("threshold")  # a number (declared in scalelab.registry) or None
    threshold = float(fieldmetrics.quantile(hr_val_physical, 0.9) if threshold is None
                      else threshold)

    # model, loss, optimiser
    model = make_model(cfg).to(device, memory_format=memory_format)
    loss_fn = make_loss(cfg)
    # the reference every downscaling is compared with first, scored once per run
    bicubic = evaluate_bicubic(loss_fn, lr_val, hr_val, data_range, members, val_reference,
                               to_physical=data.to_physical, weights=data.val_weights,
                               masked=data.masked)
    # the validation sets of shifted regions (options.regions), scored like the validation set
    shifted = regions.region_sets(data, loss_fn, members, cfg.options.get("threshold"),
                                  memory_format)
    if hasattr(loss_fn, "bind"):  # a term that scores the network's state (kl) reads it
        loss_fn.bind(model)  # (after the bicubic references: they have no latent)
    ensemble_loss = getattr(loss_fn, "needs_ensemble", False)
    generative = is_generative(model)
    # an ensemble loss runs the network once per member; a generative family, its objective
    size = run_size(cfg, model, tuple(lr_train.shape[1:]), loss_fn)
    params, flops_per_sample, sample_flops = (size["params"], size["flops_per_sample"],
                                              size["sample_flops"])
    optimizer = make_optimizer(cfg, model)
    forward = compile_model(model) if cfg.compile else model
    adversary = None  # adversarial training: the discriminator and its optimiser
    if cfg.adversarial_weight > 0:
        from scalelab.train.adversarial import Adversary

        adversary = Adversary(cfg, hr_train.shape[1], device, memory_format, autocast,
                              masked=data.masked)

    # state that a checkpoint carries
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)  # batch indices
    rows: list[dict] = []
    start_step, running_sum, running_count, elapsed_before = 0, 0.0, 0, 0.0
    status, diverged_step = "running", None
    warnings: list[str] = []  # e.g. an unreadable checkpoint: the run starts over, and says so
    start = starting_point(cfg, checkpoint_dir, trunk_dir, warnings)
    if start.ended is not None:  # the run had ended: hand it back
        return start.ended
    saved, branch_points = start.saved, start.branch_points
    resumed_from, branched_from = start.resumed_from, start.branched_from
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if adversary is not None:
            adversary.load_state_dict(saved["adversary"])
        gen.set_state(saved["rng"]["batches"])
        set_rng_state(saved["rng"], device)
        rows = saved["rows"]
        start_step, running_sum, running_count = saved["step"], saved["running_sum"], saved["running_count"]
        elapsed_before = saved["elapsed_s"]
        if on_row is not None:  # the curve so far, sent again: a run resumed in a new process
            for row in rows:   # (its W&B run resumed there too) logs its whole history
                on_row(row)

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t0

    def record(step: int, train_loss: float) -> bool:
        """Evaluate and append a curve row; False (and no row) if the validation loss is not finite."""
        samples_seen = step * cfg.batch_size
        # the network as it trained last: quantized once its QAT phase has begun
        set_quantized(model, train_quantized(cfg, max(step - 1, 0)))
        row = {
            "step": step,
            "samples_seen": samples_seen,
            "samples": cfg.samples,
            "epochs": samples_seen / cfg.samples,
            "flops": 3.0 * flops_per_sample * samples_seen,
            "lr": lr_at(max(step - 1, 0), cfg),
            "train_loss": train_loss,
            **evaluate(model, forward, loss_fn, lr_val, hr_val, data_range, members,
                       threshold, autocast, val_reference, cfg.seed,
                       to_physical=data.to_physical, weights=data.val_weights,
                       masked=data.masked),
            **bicubic,
            **regions.evaluate_regions(shifted, model, forward, loss_fn, members, autocast,
                                       cfg.seed, data.to_physical, data.masked),
        }
        if hasattr(model, "rescaling_metrics"):  # learned rescaling: its own LR, and the HR
            row.update(model.rescaling_metrics(  # reconstructed from it (scalelab.models.irn)
                lr_val, hr_val, to_physical=data.to_physical, seed=cfg.seed, members=members))
        row["wall_time_s"] = elapsed()
        if not math.isfinite(row["val_loss"]):
            return False
        rows.append(row)
        if on_row is not None:
            on_row(row)
        return True

    def info() -> dict:
        return {
            "params": params,
            "flops_per_sample": flops_per_sample,
            **({"sample_flops": sample_flops} if generative else {}),
            **({k: size[k] for k in ("discriminator_params", "discriminator_flops_per_sample")}
               if adversary is not None else {}),
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine(),
            "host": platform.node(),
            "wall_time_s": elapsed(),
            "peak_memory_bytes": _peak_memory_bytes(device),
            "diverged_step": diverged_step,
            "resumed_from_step": resumed_from,
            "branched_from_step": branched_from,
            **({"warning": " ".join(warnings)} if warnings else {}),
            "versions": _versions(),
            "config": cfg.to_dict(),
        }

    def checkpoint(step: int, name: str = "last.pt") -> None:
        save_checkpoint(checkpoint_dir, {
            "run_id": cfg.run_id, "status": status, "step": step,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            **({"adversary": adversary.state_dict()} if adversary is not None else {}),
            "rng": {"batches": gen.get_state(), **rng_state(device)},
            "running_sum": running_sum, "running_count": running_count,
            "rows": rows, "elapsed_s": elapsed(),
            # plain JSON types only, so that weights_only=True loads it
            "info": json.loads(json.dumps(info(), default=str)) if status != "running" else {},
        }, name)

    if start_step == 0 and not record(0, float("nan")):
        status, diverged_step = "diverged", 0  # not finite before any training: nothing to run
    step_losses: list[torch.Tensor] = []  # on the device; read back at eval/checkpoint steps
    for step in range(start_step, cfg.steps if status == "running" else start_step):
        for group in optimizer.param_groups:  # μP: lr_multiplier × the schedule's rate
            group["lr"] = lr_at(step, cfg) * group.get("lr_multiplier", 1.0)
        set_quantized(model, train_quantized(cfg, step))
        idx = torch.randint(0, cfg.samples, (cfg.batch_size,), generator=gen).to(device)
        lr_b, hr_b = lr_train[idx].contiguous(memory_format=memory_format), hr_train[idx]
        with autocast:
            loss = training_step_loss(model, forward, loss_fn, lr_b, hr_b, members, ensemble_loss,
                                      masked=data.masked, adversary=adversary)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if adversary is not None:  # the discriminator's step on the same batch
            adversary.step(lr_at(step, cfg))
        step_losses.append(loss.detach())

        done = step + 1
        regular = done % cfg.eval_every == 0
        evaluate_now = regular or done == cfg.steps
        checkpoint_now = checkpoint_dir is not None and cfg.checkpoint_every > 0 and (
            done % cfg.checkpoint_every == 0)
        branch_now = checkpoint_dir is not None and done in branch_points
        if evaluate_now or checkpoint_now or branch_now:
            values = torch.stack(step_losses).tolist()
            step_losses.clear()
            bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
            if bad:  # the first non-finite loss; the steps after it are discarded
                status, diverged_step = "diverged", done - len(values) + bad[0] + 1
                break
            for value in values:  # one at a time, so the sum is the same wherever we stop
                running_sum += value
                running_count += 1
        if branch_now and not regular:  # before the trunk's own last row: a branch has none
            checkpoint(done, branch_filename(done))
        if evaluate_now:
            if not record(done, running_sum / running_count):
                status, diverged_step = "diverged", done
                break
            running_sum, running_count = 0.0, 0
        if branch_now and regular:
            checkpoint(done, branch_filename(done))
        if checkpoint_now:
            checkpoint(done)

    if status == "running" and rows and rows[-1]["step"] < cfg.steps == start_step:
        # a trunk resumed from the branch checkpoint at its last step: its own last row
        if not record(cfg.steps, running_sum / running_count if running_count else float("nan")):
            status, diverged_step = "diverged", cfg.steps
    if status == "running":
        status = "finished"
    if checkpoint_dir is not None and cfg.checkpoint_every > 0:
        checkpoint(rows[-1]["step"] if rows else 0)  # the ended run: a restart returns it at once
    return RunResult(run_id=cfg.run_id, status=status, rows=rows, info=info())


def _peak_memory_bytes(device: torch.device) -> int:
    """Peak GPU memory allocated by torch on CUDA; else the process's peak resident memory."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        scalelab_version = version("scalelab")
    except PackageNotFoundError:
        scalelab_version = "unknown"
    return {
        "scalelab": scalelab_version,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
