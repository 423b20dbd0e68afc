"""User-facing errors.

Every mistake a user can make (a bad spec, a bad table, too few points to fit) is
raised as :class:`ScalelabError` with one sentence that says what is wrong and how
to mend it, before any work starts. The command line prints that sentence alone
(no traceback) and exits with status 2. Every error here is a ValueError; one about the
kind of an argument (:class:`InputTypeError`) is a TypeError too. :func:`check_choice` is the one check of a
named choice, shared by every layer; this module imports nothing.
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


class NotFittedError(ScalelabError, AttributeError):
    """An estimator (a law, a recalibrator) used before ``fit``.

    A ValueError and an AttributeError, as scikit-learn's ``NotFittedError``: ``hasattr(law,
    "params_")`` is False before ``fit`` and ``except AttributeError`` catches it too.
    """
