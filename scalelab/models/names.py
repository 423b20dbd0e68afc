"""The network families, one record each (torch-free, for validation and sizing).

A :class:`Family` declares everything about a family: its ``builder`` (the import path
of its ``nn.Module`` class, loaded on first use), its ``options`` (the keys of a run's
``options`` it reads, with their defaults and valid ranges), a lower bound of its
parameter count from its leading ``width²`` terms (what :mod:`scalelab.sweep.guards`
refuses too-large runs with, building nothing), whether its blocks work on the HR grid,
whether it is generative (draws its own samples and trains by its own objective), and
``check(cfg, source)``, the rules tying its options to the run (a U-Net's HR size
divisible by 2^depth, a diffusion's σ range). ``build_model``, the names, the option
checks and the memory bounds are all built from ``FAMILIES``; a new family is one module
with its class and one record here.

Parameter bounds: 3×3 convolutions hold 9·c_in·c_out weights; a Swin transformer block
holds (4 + 2·mlp_ratio)·width² in its attention and MLP (Liang et al. 2021, §3.1); an
IRN coupling block holds three subnets with one width×width 3×3 convolution each.
A family's ``metrics`` are the curve columns its runs record besides every run's (the
learned rescaling's LR fidelity and reconstruction), which a spec's ``metric.name`` may name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from scalelab._declare import Opt, choice, count, defaults, number, positive
from scalelab._errors import SpecError

SAMPLERS = ("heun", "stochastic")
RESIDUALS = ("none", "bilinear", "regression")


@dataclass(frozen=True)
class Family:
    """Everything about one network family (see the module's docstring)."""

    name: str
    builder: str | Callable
    params_bound: Callable[[float, int, dict, int], float]
    options: dict[str, Opt] = field(default_factory=dict)
    hr_grid: bool = False  # its blocks work on the HR grid (activations per HR pixel)
    generative: bool = False
    check: Callable | None = None  # check(cfg, source): rules between options and the run
    doc: str = ""
    mup: bool = True  # parametrization: mup applies (scalelab.models.mup)
    metrics: tuple = ()  # curve columns its runs record besides every run's (irn: LR fidelity)


def _edsr_bound(w, d, options, in_channels):  # head, d residual blocks of two 3×3 convs, tail
    return 9 * w * w * (2 * d + 1) + 9 * in_channels * w


def _srcnn_bound(w, d, options, in_channels):  # 9×9 extraction, d 3×3 mappings
    return 9 * w * w * d + 81 * in_channels * w


def _unet_bound(w, d, options, in_channels):  # widths w·2^l; at least one 3×3 conv a level
    return sum(9 * (w * 2 ** level) ** 2 for level in range(d + 1))


def _swinir_bound(w, d, options, in_channels):  # d groups of `blocks` Swin blocks + a 3×3 conv
    blocks = options.get("blocks", 2) if isinstance(options.get("blocks"), int) else 2
    ratio = options.get("mlp_ratio", 2.0)
    ratio = ratio if isinstance(ratio, (int, float)) and ratio > 0 else 2.0
    return d * (blocks * (4 + 2 * ratio) + 9) * w * w


def _irn_bound(w, d, options, in_channels):  # ≥ one ×2 stage of d couplings, 3 subnets each
    return 3 * d * 9 * w * w


def _check_irn(cfg, source: str) -> None:
    if cfg.scale < 2 or cfg.scale & (cfg.scale - 1):
        raise SpecError(f"{source}: an irn halves the grid once per stage, so scale must be a "
                        f"power of 2 (2, 4, 8), got {cfg.scale}.")
    from scalelab.data.options import channels_of

    in_channels, channels = channels_of(cfg.field, cfg.options)
    if in_channels != channels:
        raise SpecError(f"{source}: an irn's LR is the forward image of the HR, so its input "
                        f"holds the target's channels only; drop options.predictors and "
                        f"options.static, or use another family.")


def _check_unet(cfg, source: str) -> None:
    factor = 2 ** cfg.depth
    if cfg.field_size % factor:
        raise SpecError(f"{source}: a {cfg.family} of depth {cfg.depth} halves the HR grid "
                        f"{cfg.depth} times, so field_size must be a multiple of {factor}, got "
                        f"{cfg.field_size}; choose a smaller depth or another field_size.")


def _check_swinir(cfg, source: str) -> None:
    heads = cfg.options.get("heads")
    if heads and isinstance(heads, int) and cfg.width % heads:
        raise SpecError(f"{source}: the swinir width {cfg.width} is not divisible by "
                        f"heads={heads}; choose heads among the divisors of every width swept.")


def _check_diffusion(cfg, source: str) -> None:
    _check_unet(cfg, source)
    opts = {**defaults(DIFFUSION_OPTIONS), **family_options("diffusion", cfg.options)}
    if not opts["sigma_min"] < opts["sigma_max"]:
        raise SpecError(f"{source}: the diffusion option sigma_min ({opts['sigma_min']}) must be "
                        f"below sigma_max ({opts['sigma_max']}).")
    if not opts["s_tmin"] <= opts["s_tmax"]:
        raise SpecError(f"{source}: the diffusion option s_tmin ({opts['s_tmin']}) must not "
                        f"exceed s_tmax ({opts['s_tmax']}).")


# Karras et al. 2022, Table 1 and eq. 5; stochastic sampler defaults from Table 5
DIFFUSION_OPTIONS = {
    "sigma_data": positive(0.5), "p_mean": number(-1.2), "p_std": positive(1.2),
    "sigma_min": positive(0.002), "sigma_max": positive(80.0), "rho": positive(7.0),
    "sampler": choice("heun", SAMPLERS), "sampler_steps": count(18, high=1000),
    "s_churn": number(40.0, 0), "s_tmin": number(0.05, 0), "s_tmax": number(50.0, 0),
    "s_noise": positive(1.003), "residual": choice("bilinear", RESIDUALS),
}
# Xiao et al. 2020 (IRN), §3.3 and their code's defaults; HCD: Xu et al. 2022, §3.2
IRN_OPTIONS = {
    "guide_weight": number(1.0, 0, doc="weight of the LR guidance ‖ŷ − y‖²"),
    "distr_weight": number(1.0, 0, doc="weight of the distribution matching of z"),
    "distribution": choice("ce", ("ce", "moments"),
                           doc="ce: ½E[z²] (IRN's simplified form); moments: mean and "
                               "variance of z against N(0, 1)"),
    "clamp": positive(1.0, doc="bound of the couplings' log-scales"),
    "collaborative_steps": Opt(0, "integer", 0, 100,
                               doc="HCD's gradient steps on the LR before the inverse"),
    "collaborative_lr": positive(0.25, doc="their step, per LR pixel"),
    "temperature": number(1.0, 0, doc="z ~ N(0, τ²) when evaluated (0: the prior's mode)"),
}
#: the curve columns a learned-rescaling run records besides every run's
RESCALING_METRICS = ("val_lr_rmse", "val_recon_rmse")
_M = "scalelab.models."
#: the families, one record each; a new family is one module and one line here
FAMILIES: tuple[Family, ...] = (
    Family("edsr", _M + "edsr:EDSR", _edsr_bound),
    Family("srcnn", _M + "srcnn:SRCNN", _srcnn_bound),
    Family("unet", _M + "unet:UNet", _unet_bound, hr_grid=True, check=_check_unet),
    # Liang et al. 2021; heads None: max(1, width // 8)
    Family("swinir", _M + "swinir:SwinIR", _swinir_bound,
           {"heads": count(None, none=True), "window": count(8), "blocks": count(2),
            "mlp_ratio": positive(2.0),
            # Dehghani et al. 2023; Wortsman et al. 2023 §3.1: LayerNorm of queries and keys
            "qk_norm": Opt(False, "bool", doc="layer-normalise queries and keys before their "
                                               "dot product")},
           check=_check_swinir),
    Family("diffusion", _M + "diffusion:Diffusion", _unet_bound, DIFFUSION_OPTIONS,
           hr_grid=True, generative=True, check=_check_diffusion, mup=False),
    Family("irn", _M + "irn:IRN", _irn_bound, IRN_OPTIONS, generative=True, check=_check_irn,
           mup=False, metrics=RESCALING_METRICS),
)
#: name → record: what build_model, the checks and the bounds read (a plugin may add one)
REGISTRY: dict[str, Family] = {family.name: family for family in FAMILIES}
NAMES = tuple(REGISTRY)
# the keys of a run's ``options`` each family reads, with their defaults
OPTIONS: dict[str, dict] = {name: defaults(f.options) for name, f in REGISTRY.items()}
# families that draw their own samples and train by their own objective
GENERATIVE = tuple(name for name, f in REGISTRY.items() if f.generative)


def check_family(cfg, source: str = "the spec") -> None:
    """One SpecError sentence for a family option whose value cannot work with the run."""
    family = REGISTRY[cfg.family]
    for key, value in family_options(cfg.family, cfg.options).items():
        opt = family.options[key]
        if opt.kind == "choice" and not opt.valid(value):
            raise SpecError(f"{source}: unknown {cfg.family} option {key}={value!r}; valid "
                            f"choices are {', '.join(opt.choices)}.")
        opt.check(value, f"the {cfg.family} option {key}", source)
    if family.check is not None:
        family.check(cfg, source)


def check_parametrization(cfg, source: str = "the spec") -> None:
    """One SpecError sentence where ``parametrization: mup`` cannot apply to the run: a
    family without it, an optimiser other than Adam's (Yang et al. 2022, Table 3 gives
    Adam's rule), no ``base_width``, or a base width the family cannot build."""
    if cfg.parametrization != "mup":
        return
    if not REGISTRY[cfg.family].mup:
        names = ", ".join(n for n, f in REGISTRY.items() if f.mup)
        raise SpecError(f"{source}: parametrization mup applies to the {names} families, not "
                        f"{cfg.family}; set parametrization: standard.")
    if cfg.optimizer not in ("adam", "adamw"):
        raise SpecError(f"{source}: parametrization mup scales Adam's per-layer learning rates "
                        f"(Yang et al. 2022, Table 3); set optimizer adam or adamw, got "
                        f"{cfg.optimizer!r}.")
    if cfg.base_width < 1:
        raise SpecError(f"{source}: parametrization mup needs base_width, the width whose "
                        f"learning rate every width shares (e.g. the smallest width swept).")
    import dataclasses

    check_family(dataclasses.replace(cfg, width=cfg.base_width),
                 f"{source} (at base_width {cfg.base_width})")


def family_options(family: str, options: dict) -> dict:
    """The entries of a run's ``options`` that ``family`` reads."""
    declared = REGISTRY[family].options if family in REGISTRY else {}
    return {k: v for k, v in (options or {}).items() if k in declared}


def params_lower_bound(family: str, width: int, depth: int, options: dict | None = None,
                       in_channels: int = 1) -> float:
    """A lower bound of a network's parameter count, from its record."""
    return REGISTRY[family].params_bound(float(width), int(depth), options or {}, in_channels)
