"""Runs tables drawn from known laws on the grids scaling studies run, to test predictions.

Each function returns ``(fitted, held)``: the runs a study would have (small models) and
the runs it wants predicted (larger ones, with ``distance``: their size over the largest
fitted), both with the true ``val_loss`` times log-normal noise of ``noise`` (relative
standard deviation; published language-model runs scatter by 0.5–2% between seeds).

- :func:`overtraining_grid`: each model size trained at several multiples M = D/N of its
  size (Gadre et al. 2024: M from 5 to 640 samples per parameter), Chinchilla's law as
  the truth (Besiroglu et al. 2024's replication of Hoffmann et al. 2022, eq. 2).
- :func:`isoflop_grid`: a few models per compute budget around the budget's optimum
  (Hoffmann et al. 2022, approach 2; Porian et al. 2024), the same truth; ``flops`` =
  6·N·D.
- :func:`multi_epoch_grid`: model sizes trained for 1 to ``max_epochs`` epochs of a fixed
  set of U distinct samples, the data-constrained law as the truth (Muennighoff et al.
  2023, their fitted constants).
- :func:`farseer_grid`: the over-training layout with Farseer's surface as the truth
  (Li et al. 2025: the data term's exponent and scale, and the floor, vary with N), its
  code-data constants by default.

Torch-free.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Besiroglu et al. 2024 (Epoch AI), their replication of Chinchilla's approach 3
CHINCHILLA = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
DISTANCES = (3.0, 10.0, 30.0)


def chinchilla_loss(N, D, E=CHINCHILLA["E"], A=CHINCHILLA["A"], B=CHINCHILLA["B"],
                    alpha=CHINCHILLA["alpha"], beta=CHINCHILLA["beta"]):
    return E + A * np.asarray(N, float)**-alpha + B * np.asarray(D, float)**-beta


def data_constrained_loss(N, D, U, E=None, A=None, B=None, alpha=None, beta=None,
                          R_D_star=None, R_N_star=None):
    """Muennighoff et al. 2023, eqs. 5–7, written out (their fitted constants by default)."""
    from scalelab.laws.data_constrained import MUENNIGHOFF_2023 as P

    E, A, B = E or P["E"], A or P["A"], B or P["B"]
    alpha, beta = alpha or P["alpha"], beta or P["beta"]
    r_d, r_n = R_D_star or P["R_D_star"], R_N_star or P["R_N_star"]
    N, D, U = (np.asarray(v, float) for v in (N, D, U))
    U = np.minimum(U, D)
    d_eff = U + U * r_d * (1 - np.exp(-(D / U - 1) / r_d))
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    u_n = np.minimum(N, G * (U * G) ** (beta / alpha))
    n_eff = u_n + u_n * r_n * (1 - np.exp(-(N / u_n - 1) / r_n))
    return E + A / n_eff**alpha + B / d_eff**beta


def farseer_loss(N, D, a1=None, b1=None, alpha=None, a2=None, b2=None, beta=None,
                 a3=None, b3=None, gamma=None):
    """Li et al. 2025 (Farseer), written out: exp(a3·N^gamma + b3) + exp(a2·N^beta + b2)
    · D^(−exp(a1·N^alpha + b1)); the constants default to their code-data fit
    (:data:`scalelab.laws.farseer.FARSEER_CODE`), a1 = a2 = a3 = 0 is E + B/D^β."""
    from scalelab.laws.farseer import FARSEER_CODE as P

    given = dict(a1=a1, b1=b1, alpha=alpha, a2=a2, b2=b2, beta=beta, a3=a3, b3=b3,
                 gamma=gamma)
    c = {k: P[k] if v is None else v for k, v in given.items()}
    N, D = np.asarray(N, float), np.asarray(D, float)
    exponent = np.exp(c["a1"] * N ** c["alpha"] + c["b1"])
    scale = np.exp(c["a2"] * N ** c["beta"] + c["b2"])
    return np.exp(c["a3"] * N ** c["gamma"] + c["b3"]) + scale * D ** -exponent


def _noisy(loss, noise: float, rng) -> np.ndarray:
    return loss * np.exp(noise * rng.standard_normal(np.shape(loss)))


def _frame(rows, noise, rng, truth) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    table["true_loss"] = truth(table)
    table["val_loss"] = _noisy(table["true_loss"].to_numpy(), noise, rng)
    table["run_id"] = [f"r{i}" for i in range(len(table))]
    return table


def overtraining_grid(sizes=(1.1e7, 3e7, 7.9e7, 1.5e8, 4.1e8),
                      multipliers=(5, 10, 20, 40, 80, 160, 320, 640),
                      distances=DISTANCES, noise: float = 0.007, seed: int = 0):
    """Models of each size trained at D = M·N samples for each multiplier M."""
    return _multiplier_grid(sizes, multipliers, distances, noise, seed,
                            lambda t: chinchilla_loss(t["params"], t["samples"]))


def _multiplier_grid(sizes, multipliers, distances, noise, seed, truth):
    """(fitted, held): each size at D = M·N for each multiplier M, and the largest size ×
    each distance at every M, with ``truth(table)`` plus log-normal noise."""
    rng = np.random.default_rng(seed)
    fitted = _frame([{"params": n, "samples": m * n, "multiplier": m, "flops": 6 * n * m * n}
                     for n in sizes for m in multipliers], noise, rng, truth)
    top = max(sizes)
    held = _frame([{"params": top * d, "samples": m * top * d, "multiplier": m,
                    "flops": 6 * m * (top * d)**2, "distance": d}
                   for d in distances for m in multipliers], noise, rng, truth)
    return fitted, held


def isoflop_grid(budgets=(1e16, 3e16, 1e17, 3e17, 1e18), per_budget: int = 9,
                 spread: float = 1.2, distances=DISTANCES, noise: float = 0.007,
                 seed: int = 0):
    """``per_budget`` models per budget C, N spread over ±``spread`` decades around the
    budget's optimum, D = C/(6N)."""
    rng = np.random.default_rng(seed)
    p = CHINCHILLA
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    truth = lambda t: chinchilla_loss(t["params"], t["samples"])  # noqa: E731

    def rows(c, distance=None):
        n_opt = G * (c / 6) ** (p["beta"] / (p["alpha"] + p["beta"]))
        out = []
        for n in n_opt * np.logspace(-spread, spread, per_budget):
            row = {"params": n, "samples": c / (6 * n), "flops": c}
            if distance is not None:
                row["distance"] = distance
            out.append(row)
        return out

    fitted = _frame([r for c in budgets for r in rows(c)], noise, rng, truth)
    top = max(budgets)
    held = _frame([r for d in distances for r in rows(top * d, d)], noise, rng, truth)
    return fitted, held


def multi_epoch_grid(sizes=tuple(np.geomspace(2e6, 5e7, 8)), unique: float = 1e8,
                     epochs=(1, 2, 4, 8, 16, 40, 100, 250, 460), distances=DISTANCES,
                     noise: float = 0.007, seed: int = 0):
    """Models of each size trained for each number of epochs of ``unique`` samples."""
    rng = np.random.default_rng(seed)

    def truth(t):
        return data_constrained_loss(t["params"].to_numpy(float),
                                     t["samples_seen"].to_numpy(float),
                                     t["samples"].to_numpy(float))

    fitted = _frame([{"params": n, "samples": unique, "samples_seen": e * unique, "epochs": e}
                     for n in sizes for e in epochs], noise, rng, truth)
    top = max(sizes)
    held = _frame([{"params": top * d, "samples": unique, "samples_seen": e * unique,
                    "epochs": e, "distance": d} for d in distances for e in epochs],
                  noise, rng, truth)
    return fitted, held


def farseer_grid(sizes=tuple(np.geomspace(5e7, 1e9, 6)),
                 multipliers=(5, 10, 20, 40, 80, 160, 320), distances=DISTANCES,
                 noise: float = 0.007, seed: int = 0, **constants):
    """Models of each size trained at D = M·N samples for each multiplier M, Farseer's
    surface (its code-data constants, or ``constants``) as the truth."""
    return _multiplier_grid(sizes, multipliers, distances, noise, seed,
                            lambda t: farseer_loss(t["params"], t["samples"], **constants))
