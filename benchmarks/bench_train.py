"""Training throughput (samples/s) of every network family at three sizes, on this device.

Times the training step of ``scalelab.train`` (the same model, loss and optimiser
builders; forward, loss, backward, optimiser step) on fields already on the
device, after warm-up steps, and prints samples/s and the achieved model FLOP/s
(3 × forward FLOPs per sample × samples/s, forward FLOPs by torch's counter;
Kaplan et al. 2020 §2.1). A diffusion model's step is its EDM training loss (one
denoiser evaluation per sample), the step ``scalelab.train`` takes; an IRN's, its
rescaling objective (forward map, inverse, distribution term). ``--kernels`` also times
the learned degradation (ADK-Net, :mod:`scalelab.data.kernels`): its fitting step and its
application to HR fields, next to the block mean and bicubic downsampling.
On CUDA it also prints the fraction of the device's peak
dense bf16 tensor FLOP/s (table below, from the vendors' data sheets) and times the
plain fp32 step against the speed switches (bf16 autocast + channels_last, and
``--compile``) in the same process, printing the ratio. Variants are timed in
interleaved rounds and the best round counts, so other load on the machine does not
favour one of them.

    python benchmarks/bench_train.py                 # all families, auto device
    python benchmarks/bench_train.py --device cuda --compile
    python benchmarks/bench_train.py --families edsr --steps 5   # a quick CPU look
    python benchmarks/bench_train.py --mitigations    # + μP and swinir's qk_norm, same rounds

``--mitigations`` also times the learning-rate mitigations against the plain step:
``parametrization: mup`` (base width half the width; its readout multiplier and per-group
Adam rates) for the families that have it, and swinir's ``qk_norm`` (two LayerNorms per
attention); "—" where one does not apply.

Geographic shift (``options.regions``) leaves the training step as it is; each shifted
region adds one pass over the validation fields at every evaluation (and one bicubic pass
per run). The last line times that pass (``scalelab.train.loop.evaluate`` on
``--region-fields`` fields, the first family's middle size): the per-region evaluation cost.

    python benchmarks/bench_train.py --families edsr --precision  # fp32, bf16, fake-quant

``--precision`` times the training step in fp32 against bf16 autocast and against
fake-quantized weights (4 bits, straight-through; ``weight_bits``) and weights and
layer inputs (4 and 8 bits; ``act_bits``) — the cost of quantization-aware training
(:mod:`scalelab.models.quant`) — on any device, printing each one's ratio to fp32.

    python benchmarks/bench_train.py --families edsr --adversarial 0.1   # SRGAN training
    python benchmarks/bench_train.py --families edsr --members 4 --loss "crps_fair + 0.1*kl"

``--adversarial W`` times adversarial training (SRGAN): each step is the generator's step
with the discriminator's term and then the discriminator's own step, and the FLOPs count
both networks (``params`` stays the generator's). ``--loss`` names the loss; a loss with a
``kl`` term (FuXi-ENS) trains the VAE-perturbed network.

Small downscaling networks are far from the peak: their convolutions have few
channels, so the fraction of peak is a measure of how much a bigger width or batch
would cost for free, not a target.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from scalelab import registry
from scalelab.config import RunConfig
from scalelab.data import make_pairs
from scalelab.models import count_params
from scalelab.train.loop import (compile_model, lr_at, make_loss, make_model, make_optimizer,
                                 resolve_device, run_size, training_step_loss)

# dense (no sparsity) bf16 tensor-core peak, TFLOP/s, by a substring of the CUDA device
# name; the first match wins, so the more specific names come first
PEAK_BF16_TFLOPS = (
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM5 (e.g. "NVIDIA H100 80GB HBM3")
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10", 125.0),
)

# (width, depth) of the small, medium and large network of each family
SIZES = {
    "unet": ((8, 2), (16, 3), (32, 4)),  # depth = levels; the HR grid must divide by 2^depth
    "diffusion": ((8, 2), (16, 3), (32, 4)),  # its denoiser is the U-Net
    "swinir": ((16, 1), (32, 2), (48, 4)),  # depth = residual Swin groups of 2 layers
    "irn": ((8, 2), (16, 4), (32, 8)),  # depth = coupling blocks per ×2 stage (IRN: 8)
}
DEFAULT_SIZES = ((16, 2), (32, 4), (64, 8))


def peak_bf16_flops(device_name: str) -> float | None:
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in device_name:
            return tflops * 1e12
    return None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(cfg: RunConfig, device: torch.device, lr_train, hr_train):
    """One training step of ``cfg`` as ``scalelab.train`` takes it (a closure over its state)."""
    torch.manual_seed(cfg.seed)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")
    model = make_model(cfg).to(device, memory_format=memory_format)
    loss_fn = make_loss(cfg).bind(model)  # a kl term reads the network's latent
    optimizer = make_optimizer(cfg, model)
    forward = compile_model(model) if cfg.compile else model
    adversary = None
    if cfg.adversarial_weight > 0:  # the discriminator, with the same switches
        from scalelab.train.adversarial import Adversary

        adversary = Adversary(cfg, hr_train.shape[1], device, memory_format, autocast)
    ensemble = getattr(loss_fn, "needs_ensemble", False)
    lr_train = lr_train.contiguous(memory_format=memory_format)
    gen = torch.Generator(device="cpu").manual_seed(0)

    def step():
        idx = torch.randint(0, lr_train.shape[0], (cfg.batch_size,), generator=gen).to(device)
        lr_b, hr_b = lr_train[idx].contiguous(memory_format=memory_format), hr_train[idx]
        with autocast:
            loss = training_step_loss(model, forward, loss_fn, lr_b, hr_b, cfg.ensemble_members,
                                      ensemble, adversary=adversary)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if adversary is not None:
            adversary.step(lr_at(0, cfg))

    return step


def throughputs(steps_by_variant: list, device: torch.device, batch: int, steps: int,
                warmup: int, rounds: int) -> list[float]:
    """Samples/s of each step function: the best of ``rounds`` interleaved timings of ``steps``
    steps each, so that load from other processes and warm caches favour no variant."""
    for step in steps_by_variant:
        for _ in range(warmup):
            step()
    best = [0.0] * len(steps_by_variant)
    for _ in range(rounds):
        for i, step in enumerate(steps_by_variant):
            synchronize(device)
            start = time.perf_counter()
            for _ in range(steps):
                step()
            synchronize(device)
            best[i] = max(best[i], steps * batch / (time.perf_counter() - start))
    return best


def _applies(label: str, family: str) -> bool:
    """Whether a timed variant exists for ``family`` (μP: its record's ``mup``; qk_norm:
    swinir's option)."""
    from scalelab.models.names import REGISTRY

    if label == "mup":
        return REGISTRY[family].mup
    if label == "qk_norm":
        return "qk_norm" in REGISTRY[family].options
    return True


def _switches(label: str, switches: dict, width: int) -> dict:
    """A variant's config changes at ``width`` (μP's base width: half of it)."""
    if label == "mup":
        return {**switches, "base_width": max(1, width // 2)}
    return switches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--families", nargs="*", default=list(registry.model_families()))
    parser.add_argument("--field-size", type=int, default=64, help="HR field size in pixels")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default 256 on CUDA, 16 on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 50 CUDA, 5 CPU)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved timing rounds per variant; the best counts")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default 10 CUDA, 2 CPU)")
    parser.add_argument("--members", type=int, default=1,
                        help="M > 1: the stochastic variant trained with fair CRPS on M members")
    parser.add_argument("--loss", default=None,
                        help="loss variant (default: crps_fair with --members > 1, else mse); "
                             "a kl term trains the VAE perturbation")
    parser.add_argument("--adversarial", type=float, default=0.0,
                        help="adversarial_weight: > 0 times SRGAN training (discriminator too)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--precision", action="store_true",
                        help="time fp32 against bf16 autocast and fake-quantized QAT steps")
    parser.add_argument("--compare", action="store_true",
                        help="time the switches on CPU too (on CUDA they are always timed)")
    parser.add_argument("--region-fields", type=int, default=None,
                        help="validation fields of the per-region evaluation timing (default: "
                             "the batch size; 0: skip it)")
    parser.add_argument("--mitigations", action="store_true",
                        help="also time parametrization mup and swinir's qk_norm")
    parser.add_argument("--kernels", action="store_true",
                        help="also time the learned kernels (fit step, application)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    batch = args.batch_size or (256 if cuda else 16)
    steps = args.steps or (50 if cuda else 5)
    warmup = args.warmup or (10 if cuda else 2)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    peak = peak_bf16_flops(name) if cuda else None
    loss = args.loss or ("crps_fair" if args.members > 1 else "mse")
    print(f"device: {name}; torch {torch.__version__}; HR {args.field_size}², ×{args.scale}, "
          f"batch {batch}, {args.members} member(s), loss {loss}"
          + (f", adversarial_weight {args.adversarial:g}" if args.adversarial else "")
          + f", best of {args.rounds} × {steps} timed steps after {warmup}")
    if cuda and peak is None:
        print("  (no peak bf16 figure for this device in PEAK_BF16_TFLOPS; fraction not shown)")

    (lr_train, hr_train), _ = make_pairs("grf", 4 * batch, 1, args.field_size, args.scale,
                                         device=device)
    variants = [("fp32", {})]
    if args.precision:
        variants += [("bf16", {"amp": "bf16"}), ("QAT w4", {"weight_bits": 4}),
                     ("QAT w4a8", {"weight_bits": 4, "act_bits": 8})]
    elif cuda or args.compare:
        variants.append(("bf16+NHWC", {"amp": "bf16", "channels_last": True}))
        if args.compile:
            variants.append(("bf16+NHWC+compile", {"amp": "bf16", "channels_last": True,
                                                   "compile": True}))
    if args.mitigations:  # (label, switches, applies(family)); the base width set per size
        variants.append(("mup", {"parametrization": "mup"}))
        variants.append(("qk_norm", {"options": {"qk_norm": True}}))
    header = f"{'family':8} {'width':>5} {'depth':>5} {'params':>10} {'GFLOP/sample':>12}"
    for label, _ in variants:
        header += f" | {label + ' samples/s':>26} {'TFLOP/s':>8}" + (f" {'% peak':>7}" if peak else "")
    if len(variants) > 1:
        header += " | speed-up"
    print(header)
    from scalelab.losses import parse_loss
    from scalelab.models.names import GENERATIVE

    for family in args.families:
        if family in GENERATIVE and (args.adversarial or parse_loss(loss).needs_latent):
            print(f"{family:8} (trains by its own objective: no discriminator or VAE latent)")
            continue
        for width, depth in SIZES.get(family, DEFAULT_SIZES):
            base = RunConfig(family=family, width=width, depth=depth, scale=args.scale,
                             field_size=args.field_size, batch_size=batch, device=str(device),
                             ensemble_members=args.members, loss_variant=loss,
                             adversarial_weight=args.adversarial)
            base.validate(source="bench_train")
            model = make_model(base).to(device)
            # training forward per sample (a diffusion model: one denoiser evaluation; an
            # adversarial run: its discriminator's evaluations too), as the training loop counts
            flops = run_size(base, model, tuple(lr_train.shape[1:]))["flops_per_sample"]
            line = f"{family:8} {width:>5} {depth:>5} {count_params(model):>10} {flops / 1e9:>12.3f}"
            applies = [_applies(label, family) for label, _ in variants]
            timed = throughputs(
                [make_step(replace(base, **_switches(label, switches, width)), device, lr_train,
                           hr_train) for (label, switches), ok in zip(variants, applies) if ok],
                device, batch, steps, warmup, args.rounds)
            rates = [timed.pop(0) if ok else float("nan") for ok in applies]
            for rate in rates:
                if rate != rate:  # a mitigation this family does not have
                    line += f" | {'—':>26} {'':>8}" + (f" {'':>7}" if peak else "")
                    continue
                achieved = 3 * flops * rate
                line += f" | {rate:>26.1f} {achieved / 1e12:>8.4f}"
                if peak:
                    line += f" {100 * achieved / peak:>6.2f}%"
            if len(rates) > 1:
                line += " | " + " ".join(f"{r / rates[0]:.2f}×" if r == r else "—"
                                         for r in rates[1:])
            print(line, flush=True)
    fields = batch if args.region_fields is None else args.region_fields
    if fields > 0 and args.families:
        region_evaluation_cost(args.families[0], args, device, fields, args.rounds)

    if args.kernels:
        bench_kernels(hr_train, args.scale, batch, steps, warmup, args.rounds, device)



def region_evaluation_cost(family: str, args, device: torch.device, fields: int,
                           rounds: int) -> float:
    """Seconds of one evaluation pass over ``fields`` validation fields (the cost each
    shifted region of ``options.regions`` adds at every evaluation); printed."""
    from scalelab.train.fieldmetrics import data_range, reference
    from scalelab.train.loop import evaluate

    width, depth = SIZES.get(family, DEFAULT_SIZES)[1]
    cfg = RunConfig(family=family, width=width, depth=depth, scale=args.scale,
                    field_size=args.field_size, device=str(device))
    (lr_val, hr_val), _ = make_pairs("grf", fields, 1, args.field_size, args.scale,
                                     device=device)
    model = make_model(cfg).to(device)
    loss_fn = make_loss(cfg)
    span, ref = data_range(hr_val), reference(hr_val)
    best = float("inf")
    for _ in range(rounds + 1):  # the first is warm-up
        synchronize(device)
        start = time.perf_counter()
        evaluate(model, model, loss_fn, lr_val, hr_val, span, ref=ref)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    print(f"per-region evaluation ({family} {width}×{depth}, {fields} fields of "
          f"{args.field_size}²): {best * 1e3:.1f} ms per evaluation step for each shifted "
          f"region of options.regions ({fields / best:.0f} fields/s); training steps are "
          f"unchanged", flush=True)
    return best


def bench_kernels(hr, scale: int, batch: int, steps: int, warmup: int, rounds: int,
                  device) -> None:
    """Samples/s of fitting the learned kernels (one Adam step on a batch) and fields/s of
    applying them, next to the block mean's and bicubic's fields/s, on ``hr``."""
    from scalelab.data.degrade import bicubic, block_mean
    from scalelab.data.kernels import KernelNet

    net = KernelNet(scale).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    target = bicubic(hr, scale)
    gen = torch.Generator(device="cpu").manual_seed(0)

    def fit_step():
        idx = torch.randint(0, hr.shape[0], (batch,), generator=gen).to(device)
        loss = torch.nn.functional.mse_loss(net(hr[idx]), target[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def applying(operator):
        def step():
            with torch.no_grad():
                operator(hr[:batch])
        return step

    fit, learned, mean, cubic = throughputs(
        [fit_step, applying(net), applying(lambda x: block_mean(x, scale)),
         applying(lambda x: bicubic(x, scale))], device, batch, steps, warmup, rounds)
    params = sum(p.numel() for p in net.parameters())
    print(f"learned kernels (k = {net.kernel_size}, {params} weights): fit {fit:.1f} samples/s; "
          f"apply {learned:.1f} fields/s vs block mean {mean:.1f}, bicubic {cubic:.1f}",
          flush=True)


if __name__ == "__main__":
    main()
