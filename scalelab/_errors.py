"""User-facing errors.

Every mistake a user can make (a bad spec, a bad table, too few points to fit) is
raised as :class:`ScalelabError` with one sentence that says what is wrong and how
to mend it, before any work starts. The command line prints that sentence alone
(no traceback) and exits with status 2. Every error here is a ValueError; one about the
kind of an argument (:class:`InputTypeError`) is a TypeError too. :func:`check_choice` is the one check of a
named choice, shared by every layer; this module imports nothing (scikit-learn's
:class:`NotFittedError`, the base of scalelab's, only on first use of that name).
"""


class ScalelabError(ValueError):
    """A problem with the user's input, explained in one sentence."""


class SpecError(ScalelabError):
    """A sweep spec that cannot be run (missing file, bad YAML, unknown key, bad value)."""


class TableError(ScalelabError):
    """A runs table that cannot be analysed (missing columns, too few points, NaNs)."""


def check_choice(where: str, key: str, value, valid, error: type = ScalelabError) -> None:
    """Raise ``error`` with one sentence unless ``value`` is one of ``valid``.

    The one check of a named choice, for every layer (specs, data, calibration): e.g.
    ``"s.yaml: unknown optimizer 'adamx'; valid choices are adamw, adam, sgd."``
    """
    if value not in valid:
        raise error(f"{where}: unknown {key} {value!r}; valid choices are "
                    f"{', '.join(map(str, valid))}.")


class InputTypeError(ScalelabError, TypeError):
    """An argument of the wrong kind — a list where a table belongs, words where numbers
    belong, a float where an axis index belongs. A ScalelabError (so ``except ValueError``
    still catches every bad input) and a TypeError, as numpy and scikit-learn raise."""


class ScalelabWarning(UserWarning):
    """A result computed from input that is allowed but suspect, told in one sentence
    (rows dropped from a report, a degenerate ensemble, a fit that ran to a bound)."""


def _not_fitted_error() -> type:
    """scalelab's NotFittedError: derived from scikit-learn's when scikit-learn is installed."""
    import importlib.util

    bases: tuple[type, ...] = (ScalelabError, AttributeError)
    try:
        if importlib.util.find_spec("sklearn") is not None:
            from sklearn.exceptions import NotFittedError as SklearnNotFittedError

            bases = (ScalelabError, SklearnNotFittedError)  # a ValueError, an AttributeError
    except Exception:  # no scikit-learn, or a broken install: scalelab's own error still works
        pass

    class NotFittedError(*bases):
        """An estimator (a law, a recalibrator) used before ``fit``.

        A ValueError and an AttributeError, as scikit-learn's ``NotFittedError``:
        ``hasattr(law, "params_")`` is False before ``fit`` and ``except AttributeError``
        catches it too. Where scikit-learn is installed it derives from
        ``sklearn.exceptions.NotFittedError``, so ``except NotFittedError`` written for
        scikit-learn's estimators catches scalelab's as well.
        """

    NotFittedError.__module__ = __name__
    NotFittedError.__qualname__ = "NotFittedError"
    return NotFittedError


def __getattr__(name: str):
    # NotFittedError is made on first use (PEP 562): importing scikit-learn costs most of a
    # second, which ``import scalelab`` and the command line do not pay unless they need it.
    if name == "NotFittedError":
        cls = globals()["NotFittedError"] = _not_fitted_error()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
