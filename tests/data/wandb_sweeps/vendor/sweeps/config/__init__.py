# -*- coding: utf-8 -*-
"""Sweep config interface."""
from .cfg import SweepConfig, schema_violations_from_proposed_config
from .schema import (
    ParamValidationError,
    fill_parameter,
    fill_validate_early_terminate,
    fill_validate_metrics,
    fill_validate_schema,
)

__all__ = [
    "SweepConfig",
    "schema_violations_from_proposed_config",
    "fill_validate_schema",
    "fill_parameter",
    "fill_validate_early_terminate",
    "fill_validate_metrics",
    "ParamValidationError",
]
