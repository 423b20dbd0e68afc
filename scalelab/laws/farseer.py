"""Farseer's loss surface: the data term's scale and exponent, and the floor, vary with N.

Li et al. 2025, "Predictable Scale: Part II, Farseer — A Refined Scaling Law in Large
Language Models" (arXiv:2506.10972), write the loss as E + U(N) + V(D) + H(N, D), find
from finite differences in D (L(N, D) − L(N, λD), which cancels the N-only terms) that the
data terms follow a power law in D whose scale B(N) and exponent A(N) both change with N,
and model each N-dependence, and the N-only rest, as a stretched exponential:

    L(N, D) = exp(a3·N^gamma + b3) + exp(a2·N^beta + b2) · D^(−exp(a1·N^alpha + b1))

nine constants: the exponent A(N) = exp(a1·N^alpha + b1), the scale B(N) =
exp(a2·N^beta + b2) and the N-dependent floor E(N) = exp(a3·N^gamma + b3). Their fit on
code data (as summarised by emergentmind.com/topics/farseer-law; not checked here against
the paper's own table): a1 = −0.0209, alpha = 0.1943, b1 = −0.1826, a2 = 62.8936,
beta = −0.0614, b2 = −14.0414, a3 = −0.0047, gamma = 0.239, b3 = −0.8188. With
a1 = a2 = 0 the data term is Chinchilla's B/D^β (B = e^b2, β = e^b1), and with a3 = 0 as
well the law is Chinchilla's without its N term (Hoffmann et al. 2022, eq. 2).

The paper fits in stages ("differential piecewise fitting", its Algorithm 2): per model
size, the discrete A_N and B_N of the D power law; then A(N) and B(N) through them; then
the rest E + U(N); then rounds of refinement. Here the stages give the starts and the
whole surface is then fitted at once like every law of :mod:`scalelab.laws.base` (Huber
loss of log residuals, log L̂ = LSE(u3, u2 − e^u1·log D), batched Gauss–Newton, bootstrap):

- stage 1 (each N with 4+ distinct D): E_N + B_N·D^(−A_N) by variable projection (for
  each A of a grid, E_N and B_N by least squares);
- stage 2: log A_N, log B_N and log E_N as functions of N (the three stretched
  exponents' u_k(N) = a_k·N^e_k + b_k, each by least squares at a grid of e_k);
- a second start from Chinchilla's fit of the same points (B, β constant; the floor
  E + A/N^α as u3(N)), which any grid allows; both with their exponents varied.

The fit's coordinates are not the paper's (a_k, b_k, e_k), in which a small exponent makes
a_k and b_k trade off without bound (a·N^e ≈ a + a·e·log N), but, for each term,
u_k(N) = v_k + s_k·((N/N_0)^e_k − 1)/e_k: the value v_k and the slope s_k in log N at the
median fitted size N_0, and the curvature e_k (the same exponent), which tends smoothly to
a line in log N as e_k → 0. ``params_``, ``bse_`` and ``conf_int()`` are the paper's
constants (a_k = s_k·N_0^(−e_k)/e_k, b_k = v_k − s_k/e_k); ``reference_size_`` is N_0 and
``terms(N)`` gives A(N), B(N) and E(N), which the data determine far better than the
constants. ``fixed=`` may hold an exponent at any value, a_k at 0 (no N-dependence of
that term) and then b_k at any value; ``bounds=`` may bound the exponents (default
[−0.5, 0.5], the paper's being 0.19, −0.06 and 0.24: with wider bounds a fit to a few
sizes bends A(N) and B(N) sharply at its largest sizes to follow their noise, and
extrapolates far off); ``starts=`` are in the fit's coordinates (a_k: s_k, b_k: v_k).

As a candidate of :func:`scalelab.laws.predict` it applies where 4+ model sizes were
each trained at 3+ data sizes (27+ runs), is backtested on the same folds as the other
joint laws, and must backtest 1.3× better than another to be chosen
(``benchmarks/bench_farseer.py`` measures it against Chinchilla's law).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError, TableError
from scalelab._estimator import check_is_fitted
from scalelab.laws._objective import softmax_lse
from scalelab.laws.base import Law

#: the paper's fit on code data, as summarised by emergentmind.com (see the docstring)
FARSEER_CODE = {"a1": -0.0209, "b1": -0.1826, "alpha": 0.1943,
                "a2": 62.8936, "b2": -14.0414, "beta": -0.0614,
                "a3": -0.0047, "b3": -0.8188, "gamma": 0.239}

#: the three terms: (scale a_k, offset b_k, exponent) of A(N), B(N), E(N)
TERMS = (("a1", "b1", "alpha"), ("a2", "b2", "beta"), ("a3", "b3", "gamma"))
EXPONENTS = ("alpha", "beta", "gamma")
#: the exponents tried for each term's curvature in the staged starts
_CURVATURES = np.array([-0.5, -0.15, 0.15, 0.5])
#: stage 1's grid of data exponents A_N
_STAGE1_EXPONENTS = np.geomspace(0.02, 2.0, 60)


def _box_cox(e, ell):
    """((e^(e·ℓ) − 1)/e and its derivative in e, stable as e·ℓ → 0 (series there)."""
    z = e * ell
    small = np.abs(z) < 1e-3
    zs = np.where(small, 0.0, z)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        phi = np.where(small, 1 + z / 2 + z**2 / 6 + z**3 / 24, np.expm1(zs) / np.where(
            small, 1.0, zs))
        psi = np.where(small, 0.5 + z / 3 + z**2 / 8 + z**3 / 30,
                       (zs * np.exp(zs) - np.expm1(zs)) / np.where(small, 1.0, zs) ** 2)
    return ell * phi, ell**2 * psi


def _fit_curve(ell, u, weights=None):
    """(v, s, e) of u ≈ v + s·(e^(eℓ) − 1)/e by least squares at each e of a grid (the
    one of lowest error); a line (e → 0 is in the grid's span) when only two sizes."""
    best = None
    for e in (_CURVATURES if np.unique(ell).size > 2 else np.array([0.15])):
        bc, _ = _box_cox(e, ell)
        design = np.column_stack([np.ones_like(ell), bc])
        coef, *_ = np.linalg.lstsq(design, u, rcond=None)
        err = float(np.sum((design @ coef - u) ** 2))
        if best is None or err < best[0] - 1e-12:
            best = (err, coef[0], coef[1], e)
    return best[1], best[2], best[3]


class FarseerLaw(Law):
    """Fit ``L = exp(a3·N^gamma + b3) + exp(a2·N^beta + b2)·D^(−exp(a1·N^alpha + b1))``
    (Li et al. 2025, Farseer).

    >>> law = FarseerLaw().fit(runs, params="params", samples="samples", y="val_loss")
    >>> law.params_                        # a1, b1, alpha, a2, b2, beta, a3, b3, gamma
    >>> law.terms(N=1e9)                   # the exponent A(N), scale B(N) and floor E(N)
    >>> law.predict(N=7e9, D=1.4e11)
    """

    param_names = ("a1", "b1", "alpha", "a2", "b2", "beta", "a3", "b3", "gamma")
    log_params = frozenset()
    inputs = {"N": "params", "D": "samples"}
    falls_with = ("N", "D")
    default_bounds = {"alpha": (-0.5, 0.5), "beta": (-0.5, 0.5), "gamma": (-0.5, 0.5)}
    formula = ("L = exp(a3·N^gamma + b3) + exp(a2·N^beta + b2)·D^(−exp(a1·N^alpha + b1))")
    identified_by = {("N",): ("a3", "b3", "gamma"), ("D",): ("b3", "b2", "b1"),
                     ("N", "D"): param_names}

    def fit(self, data=None, params="params", samples="samples", y="val_loss",
            group=None) -> "FarseerLaw":
        """Fit to the columns ``params`` (N), ``samples`` (D, the data axis) and ``y``."""
        return self._fit(data, {"N": params, "D": samples}, y, group)

    # ---- the law ----------------------------------------------------------------------
    def _log_predict(self, theta, X):
        ell = np.log(X["N"]) - self.log_reference_
        log_d = np.log(X["D"])
        us, jac = [], []
        for k in range(3):
            s, v, e = (theta[..., 3 * k + j] for j in range(3))
            bc, dbc = _box_cox(e, ell)
            us.append(v + s * bc)
            jac.append((bc, np.ones_like(bc), s * dbc))
        with np.errstate(over="ignore"):
            exponent = np.exp(us[0])
        lse, (w_data, w_floor) = softmax_lse(us[1] - exponent * log_d, us[2])
        g1 = -w_data * exponent * log_d
        return lse, [g1 * jac[0][0], g1 * jac[0][1], g1 * jac[0][2],
                     w_data * jac[1][0], w_data * jac[1][1], w_data * jac[1][2],
                     w_floor * jac[2][0], w_floor * jac[2][1], w_floor * jac[2][2]]

    # ---- coordinates: (s_k, v_k, e_k) fitted, (a_k, b_k, e_k) reported --------------------
    def _check_inputs(self, X, y):
        super()._check_inputs(X, y)
        self.log_reference_ = float(np.median(np.log(X["N"])))
        self.reference_size_ = float(np.exp(self.log_reference_))

    def _check_parameter_options(self) -> None:
        super()._check_parameter_options()
        law = type(self).__name__
        fixed = self.fixed or {}
        for a, b, _ in TERMS:
            if a in fixed and fixed[a] != 0:
                raise ScalelabError(f"{law}: fixed may hold {a} only at 0 (no N-dependence of "
                                    f"its term), got {fixed[a]!r}; fit it, or fix it at 0.")
            if b in fixed and fixed.get(a) != 0:
                raise ScalelabError(f"{law}: fixed may hold {b} only together with {a}=0 (the "
                                    f"term's value at every N); add fixed[{a!r}] = 0 or fit "
                                    f"{b}.")
        for name in self.bounds or {}:
            if name not in EXPONENTS:
                raise ScalelabError(f"{law}: bounds may bound only the exponents "
                                    f"{', '.join(EXPONENTS)} (a_k and b_k are not the fit's "
                                    f"coordinates), got {name!r}; drop it.")
        shared = set(self.shared or ())
        for term in TERMS:
            if 0 < len(shared & set(term)) < 3:
                raise ScalelabError(f"{law}: shared must name all of {', '.join(term)} or "
                                    f"none (one term's constants), got "
                                    f"{sorted(shared & set(term))}; share the whole term.")

    def _to_internal(self, name: str, value: float) -> float:
        # exponents are the same coordinate; a_k = 0 is s_k = 0; b_k with a_k = 0 is v_k
        return float(value)

    def _to_natural(self, theta: np.ndarray) -> np.ndarray:
        theta = np.array(theta, dtype=float, copy=True)
        out = theta.copy()
        column = {name: j for j, name in enumerate(self.full_names_)}
        suffixes = {name[len(name.split("[")[0]):] for name in self.full_names_}
        for suffix in suffixes:
            for a, b, e in TERMS:
                ja = column.get(a + suffix, column.get(a))
                jb = column.get(b + suffix, column.get(b))
                je = column.get(e + suffix, column.get(e))
                if ja is None or jb is None or je is None:
                    continue  # a suffix of another term's groups
                s, v, ex = theta[..., ja], theta[..., jb], theta[..., je]
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    scale = np.where(s == 0, 0.0, s / ex)
                    out[..., ja] = scale * np.exp(-ex * self.log_reference_)
                    out[..., jb] = v - scale
        return out

    # ---- starts: the paper's stages, and Chinchilla's fit -----------------------------------
    def _seeds(self, X, ys) -> list:
        """Start rows (fit's coordinates): the paper's stages, Chinchilla's fit, or a
        generic row on the data's scale when neither can be made."""
        ell = np.log(X["N"]) - self.log_reference_
        seeds = [seed for seed in (self._staged_seed(X, ys, ell),
                                   self._chinchilla_seed(X, ys, ell)) if seed is not None]
        if not seeds:
            span = np.log(max(ys.max() - ys.min(), 1e-3 * ys.max()))
            seeds = [np.array([0.0, np.log(0.3), 0.15, 0.0, span + 0.3 * np.median(
                np.log(X["D"])), 0.15, 0.0, np.log(ys.min()) - 0.3, 0.15])]
        return seeds

    def _default_starts(self, X, ys):
        """The first seed, its exponents varied (the grid ``starts=`` values replace)."""
        seed = self._seeds(X, ys)[0]
        values = {name: [value] for name, value in zip(self.param_names, seed)}
        for j in (2, 5, 8):
            values[self.param_names[j]] = [seed[j], -0.3, 0.3]
        return values

    def _starts(self, X, ys):
        if self.starts:  # the user's values in the grid of the first seed
            return super()._starts(X, ys)
        seeds = self._seeds(X, ys)
        rows = []
        for seed in seeds:
            for e1 in (seed[2], -0.3, 0.3):
                for e2 in (seed[5], -0.3, 0.3):
                    for e3 in (seed[8], -0.3, 0.3):
                        row = seed.copy()
                        row[[2, 5, 8]] = e1, e2, e3
                        rows.append(row)
        grid = np.unique(np.array(rows), axis=0)
        for name, value in (self.fixed or {}).items():  # held values (fit's coordinates)
            grid[:, self.param_names.index(name)] = value
        if self._gather is not None:  # every group starts from the same rows
            col = [self.param_names.index(n.split("[")[0]) for n in self.full_names_]
            grid = grid[:, col]
        return np.clip(grid, self._lower, self._upper)

    def _staged_seed(self, X, ys, ell):
        """Stages 1–2 of the paper's fit: per N the D power law, then its N-dependence."""
        table = pd.DataFrame({"ell": ell, "D": X["D"], "y": ys})
        rows = []
        for value, part in table.groupby("ell"):
            if part["D"].nunique() < 4:
                continue
            d, y = part["D"].to_numpy(float), part["y"].to_numpy(float)
            best = None
            for a in _STAGE1_EXPONENTS:
                design = np.column_stack([np.ones_like(d), d ** -a])
                coef, *_ = np.linalg.lstsq(design, y, rcond=None)
                if coef[1] <= 0:
                    continue
                err = float(np.sum((design @ coef - y) ** 2))
                if best is None or err < best[0]:
                    best = (err, a, coef[0], coef[1])
            if best is not None:
                floor = max(best[2], 0.05 * y.min())
                rows.append((value, np.log(best[1]), np.log(best[3]), np.log(floor)))
        if len(rows) < 3:
            return None
        stage = np.array(rows)
        seed = []
        for k in (1, 2, 3):
            v, s, e = _fit_curve(stage[:, 0], stage[:, k])
            seed += [s, v, e]
        return np.array(seed)

    def _chinchilla_seed(self, X, ys, ell):
        """Chinchilla's fit of the points: B and β constant, the floor E + A/N^α as u3(N)."""
        from scalelab.laws.chinchilla import ChinchillaLaw, data_starts

        table = pd.DataFrame({"N": X["N"], "D": X["D"], "y": ys})
        try:
            law = ChinchillaLaw(n_bootstrap=0, starts=data_starts(
                table, {"N": "N", "D": "D"}, "y"), max_iter=self.max_iter).fit(
                table, params="N", samples="D", y="y")
        except ScalelabError:
            return None
        p = law.params_
        sizes = np.unique(ell)
        floor = np.log(p["E"] + p["A"] * np.exp(sizes + self.log_reference_) ** -p["alpha"])
        v3, s3, e3 = _fit_curve(sizes, floor)
        return np.array([0.0, np.log(max(p["beta"], 1e-3)), 0.15,
                         0.0, np.log(p["B"]), 0.15, s3, v3, e3])

    # ---- what the law says ----------------------------------------------------------------
    def terms(self, N, group=None) -> pd.DataFrame:
        """The data exponent A(N), data scale B(N) and floor E(N) at model sizes ``N``
        (L = E(N) + B(N)·D^(−A(N)))."""
        check_is_fitted(self)
        N = np.atleast_1d(np.asarray(N, dtype=float))
        if (N <= 0).any() or np.isnan(N).any():
            raise TableError(f"{type(self).__name__}.terms: N must be positive; got "
                             f"{N[(N <= 0) | np.isnan(N)][0]:g}.")
        if self.groups_ is not None:
            if group is None:
                raise ScalelabError(f"{type(self).__name__}.terms: the law was fitted per "
                                    f"group; pass group=<one of {self.groups_}>.")
            theta = self.theta_[self._group_gather([group])[0]]
        else:
            theta = self.theta_
        ell = np.log(N) - self.log_reference_
        out = {}
        for k, name in enumerate(("A", "B", "E")):
            s, v, e = theta[3 * k: 3 * k + 3]
            out[name] = np.exp(v + s * _box_cox(e, ell)[0])
        return pd.DataFrame({"N": N, **out})


# ---- candidates of scalelab.laws.predict ----------------------------------------------
#: model sizes, each at this many distinct data sizes, that the law needs
MIN_SLICES, MIN_SLICE_SIZES, MIN_RUNS = 4, 3, 27


def _supports_nine_constants(table, columns: dict):
    """None when the table can identify the nine constants, else why not: the data term's
    exponent and scale are functions of N, so 4+ model sizes must each be trained at 3+
    data sizes, and 27+ runs (3 per constant)."""
    n = table[columns["N"]].to_numpy(float)
    d = table[columns["D"]].to_numpy(float)
    per_size = pd.Series(np.round(np.log(d), 6)).groupby(np.round(np.log(n), 6)).nunique()
    slices = int((per_size >= MIN_SLICE_SIZES).sum())
    if slices >= MIN_SLICES and len(table) >= MIN_RUNS:
        return None
    return (f"its nine constants need {MIN_SLICES}+ model sizes each trained at "
            f"{MIN_SLICE_SIZES}+ data sizes and {MIN_RUNS}+ runs; the table has {slices} such "
            f"sizes and {len(table)} runs")


def _register():
    """Farseer is a candidate where the table can identify it (``applies``); it is fitted
    and backtested on the same folds as the other joint laws (``min_sizes=3``: a law judged
    on fewer, nearer folds would look better than it is), and with nine constants it must
    backtest 1.3× better than another law to be chosen (``preference``: about the margin
    by which two laws' backtest errors differ from one draw of noise to the next)."""
    from scalelab.laws.registry import Candidate, register_candidate

    register_candidate(Candidate(
        "FarseerLaw", "e^(a3·N^γ+b3) + e^(a2·N^β+b2)·{D}^(−e^(a1·N^α+b1))", "joint",
        lambda ctx: FarseerLaw(n_bootstrap=ctx.n_bootstrap, seed=ctx.seed),
        roles=("N", "D"), min_sizes=3, applies=_supports_nine_constants, optimum=True,
        order=34, preference=1 / 1.3))


_register()
