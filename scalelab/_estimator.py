"""The estimator contract of scalelab's laws and recalibrators, as scikit-learn's.

scikit-learn's API (Buitinck et al. 2013, "API design for machine learning software:
experiences from the scikit-learn project", §2–3): hyper-parameters are the arguments
of ``__init__``, only stored there and checked when fitting; ``fit`` learns, returns
``self`` and names what it learned with a trailing underscore; ``get_params`` /
``set_params`` / ``clone`` work on the hyper-parameters alone. Here, in addition:

- ``fit`` starts from a clean slate (:meth:`Estimator._reset`): a refit keeps nothing
  of the earlier fit — no stale backtest, no bootstrap draws of other data;
- a learned attribute read before ``fit`` raises :class:`~scalelab._errors.NotFittedError`
  (a ValueError and an AttributeError, so ``hasattr(law, "params_")`` is False);
- :func:`clone` and the methods are duck-compatible with ``sklearn.base.clone``.

Imports nothing beyond the standard library and :mod:`scalelab._errors`.
"""

from __future__ import annotations

import inspect
import numbers

from scalelab._errors import NotFittedError, ScalelabError


class Estimator:
    """Base of scalelab's estimators: parameters, cloning, freshness and not-fitted errors.

    A subclass names ``_fitted_attribute``, the learned attribute whose presence means
    that ``fit`` has finished (e.g. ``"params_"``), calls :meth:`_reset` first thing in
    ``fit`` and checks its hyper-parameters there (:meth:`_check_number`).
    """

    #: the learned attribute set last by a successful ``fit``
    _fitted_attribute: str = ""

    # ---- hyper-parameters -------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name, p in signature.parameters.items()
                if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict:
        """Hyper-parameters by name, as scikit-learn's ``get_params``."""
        params = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for name, value in list(params.items()):
                if isinstance(value, Estimator):
                    params.update({f"{name}__{k}": v for k, v in value.get_params().items()})
        return params

    def set_params(self, **params) -> "Estimator":
        """Set hyper-parameters by name (``name__sub`` reaches a nested estimator); returns self."""
        names = self._param_names()
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in names:
                raise ScalelabError(f"{type(self).__name__}.set_params: unknown hyper-parameter "
                                    f"{name!r}; its hyper-parameters are "
                                    f"{', '.join(names) or 'none'}.")
            if sub:
                getattr(self, name).set_params(**{sub: value})
            else:
                setattr(self, name, value)
        return self

    def clone(self) -> "Estimator":
        """An unfitted copy with the same hyper-parameters."""
        return clone(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"

    # ---- fitted state -----------------------------------------------------------------
    def _reset(self) -> None:
        """Forget everything learned: drop every attribute that is not a hyper-parameter."""
        keep = set(self._param_names())
        for name in list(vars(self)):
            if name not in keep:
                delattr(self, name)

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has finished on this estimator."""
        return self._fitted_attribute in vars(self)

    def __getattr__(self, name: str):
        # only reached when normal lookup fails: a learned attribute (``x_``) not set
        if name.endswith("_") and not name.startswith("_") and self._fitted_attribute:
            if self._fitted_attribute not in vars(self):
                raise _not_fitted(self)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _check_number(self, name: str, *, integer: bool = False, minimum: float | None = None,
                      exclusive: bool = False, maximum: float | None = None) -> None:
        """Raise one sentence unless hyper-parameter ``name`` is a number in range."""
        value = getattr(self, name)
        kind = numbers.Integral if integer else numbers.Real
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if ok and not integer:
            ok = value == value and abs(value) != float("inf")  # not NaN, finite
        if ok and minimum is not None:
            ok = value > minimum if exclusive else value >= minimum
        if ok and maximum is not None:
            ok = value <= maximum
        if not ok:
            what = "a whole number" if integer else "a finite number"
            if minimum is not None:
                what += f" {'>' if exclusive else '>='} {minimum:g}"
            if maximum is not None:
                what += f"{' and' if minimum is not None else ''} <= {maximum:g}"
            default = inspect.signature(type(self).__init__).parameters[name].default
            raise ScalelabError(f"{type(self).__name__}: {name} must be {what}, got {value!r}; "
                                f"the default is {default!r}.")


def _not_fitted(estimator) -> NotFittedError:
    name = type(estimator).__name__
    return NotFittedError(f"this {name} is not fitted yet; call {name}(...).fit(...) first.")


def check_is_fitted(estimator) -> None:
    """Raise :class:`~scalelab._errors.NotFittedError` unless ``estimator`` has been fitted."""
    if not getattr(estimator, "is_fitted", False):
        raise _not_fitted(estimator)


def clone(estimator: Estimator) -> Estimator:
    """An unfitted estimator of the same class with the same hyper-parameters.

    Container hyper-parameters (``fixed={...}``) are copied, so changing the clone's
    does not change the original's; nested estimators are cloned.
    """
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        if isinstance(value, Estimator):
            value = clone(value)
        elif isinstance(value, (dict, list, set)):
            value = type(value)(value)
        params[name] = value
    return type(estimator)(**params)
