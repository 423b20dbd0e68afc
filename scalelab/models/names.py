"""Names of the network families and their options (torch-free, for validation).

``OPTIONS[family]`` holds the keys of a run's ``options`` that the family reads, with
their defaults (the rest of ``options`` belongs to the field, the loss or the loop).
"""

NAMES = ("edsr", "srcnn", "unet", "swinir", "diffusion")

OPTIONS: dict[str, dict] = {
    "edsr": {},
    "srcnn": {},
    "unet": {},
    # Liang et al. 2021; heads None: max(1, width // 8)
    "swinir": {"heads": None, "window": 8, "blocks": 2, "mlp_ratio": 2.0},
    # Karras et al. 2022, Table 1 and eq. 5; stochastic sampler defaults from Table 5
    "diffusion": {"sigma_data": 0.5, "p_mean": -1.2, "p_std": 1.2, "sigma_min": 0.002,
                  "sigma_max": 80.0, "rho": 7.0, "sampler": "heun", "sampler_steps": 18,
                  "s_churn": 40.0, "s_tmin": 0.05, "s_tmax": 50.0, "s_noise": 1.003,
                  "residual": "bilinear"},
}
# families that draw their own samples and train by their own objective
GENERATIVE = ("diffusion",)
SAMPLERS = ("heun", "stochastic")
RESIDUALS = ("none", "bilinear", "regression")
assert tuple(OPTIONS) == NAMES

_CHOICES = {"sampler": SAMPLERS, "residual": RESIDUALS}
_COUNTS = ("heads", "window", "blocks", "sampler_steps")  # positive integers
_POSITIVE = ("mlp_ratio", "sigma_data", "p_std", "sigma_min", "sigma_max", "rho")


def check_options(family: str, width: int, options: dict, source: str = "the spec") -> None:
    """One SpecError sentence for a family option whose value cannot work."""
    from scalelab._errors import SpecError

    for key, value in family_options(family, options).items():
        if key in _CHOICES and value not in _CHOICES[key]:
            raise SpecError(f"{source}: unknown {family} option {key}={value!r}; valid choices "
                            f"are {', '.join(_CHOICES[key])}.")
        if key in _COUNTS and value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError(f"{source}: the {family} option {key} must be a positive integer, "
                            f"got {value!r}.")
        if key in _POSITIVE and (isinstance(value, bool) or not isinstance(value, (int, float))
                                 or not value > 0):
            raise SpecError(f"{source}: the {family} option {key} must be a positive number, "
                            f"got {value!r}.")
    heads = options.get("heads") if family == "swinir" else None
    if heads and isinstance(heads, int) and width % heads:
        raise SpecError(f"{source}: the swinir width {width} is not divisible by heads={heads}; "
                        f"choose heads among the divisors of every width swept.")


def family_options(family: str, options: dict) -> dict:
    """The entries of a run's ``options`` that ``family`` reads."""
    return {k: v for k, v in (options or {}).items() if k in OPTIONS.get(family, {})}
