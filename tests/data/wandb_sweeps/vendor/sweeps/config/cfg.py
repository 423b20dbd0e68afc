"""Base SweepConfig classes."""

from copy import deepcopy
from pathlib import Path
from typing import Dict, List, Union

import jsonschema
import yaml

from .schema import (
    check_for_deprecated_distributions,
    fill_validate_schema,
    validate_categorical_prob,
    validate_min_max,
    validator,
)

_SUPPORTED_METHODS_BY_ENGINE = {
    "wandb": ["grid", "bayes", "random"],
    "optuna": ["custom"],
    "ax": ["custom"],
}


def schema_violations_from_proposed_config(config: Dict) -> List[str]:
    schema_violation_messages = []
    for error in validator.iter_errors(config):
        schema_violation_messages.append(f"{error.message}")

    if not isinstance(config, dict):
        raise ValueError("Sweep config must be parsable as a JSON object.")

    method = config.get("method")
    scheduler = config.get("scheduler")
    has_search_space = isinstance(scheduler, dict) and bool(
        scheduler.get("search_space")
    )

    if "parameters" not in config and not has_search_space:
        schema_violation_messages.append(
            "`parameters` is required unless `scheduler.search_space` is set."
        )

    if "metric" in config and "metrics" in config:
        schema_violation_messages.append(
            "`metric` and `metrics` cannot both be set: use `metric` for a "
            "single objective, or `metrics` for multi-objective optimization."
        )
    elif "metrics" in config and method is not None and method != "custom":
        schema_violation_messages.append(
            f"`metrics` requires `method: custom` (got `method: {method}`): "
            "multi-objective optimization is only supported with a custom "
            "scheduler."
        )

    if scheduler is not None:
        if "controller" in config and config["controller"]["type"] == "local":
            schema_violation_messages.append(
                "`controller: type:local` cannot be used together with `scheduler`: "
                "use `scheduler` instead of `controller`."
            )

        if "early_terminate" in config:
            schema_violation_messages.append(
                "`early_terminate` cannot be used together with `scheduler`: "
                "early termination must be implemented by the custom scheduler "
                "itself."
            )

        if isinstance(scheduler, dict):
            engine = scheduler.get("engine")
            if engine not in _SUPPORTED_METHODS_BY_ENGINE:
                schema_violation_messages.append(
                    f"scheduler.engine '{engine}' is not supported. "
                    f"supported engines are: {', '.join(_SUPPORTED_METHODS_BY_ENGINE)}"
                )
            elif method not in _SUPPORTED_METHODS_BY_ENGINE[engine]:
                schema_violation_messages.append(
                    f"`scheduler.engine: {engine}` does not support `method: {method}`. "
                    "supported methods are: "
                    + ", ".join(
                        f"`method: {m}`" for m in _SUPPORTED_METHODS_BY_ENGINE[engine]
                    )
                )

    # validate min/max - this cannot be done with jsonschema
    # because it does not support comparing values within
    # a json document. so we do it manually here:
    if "parameters" in config:
        for parameter_name, parameter_dict in config["parameters"].items():
            if not isinstance(parameter_dict, Dict):
                raise ValueError(
                    f"Invalid configuration for hyperparameter '{parameter_name}'"
                )
            try:
                validate_min_max(parameter_name, parameter_dict)
            except ValueError as e:
                schema_violation_messages.append(e.args[0])
            try:
                validate_categorical_prob(parameter_name, parameter_dict)
            except ValueError as e:
                schema_violation_messages.append(e.args[0])
            try:
                check_for_deprecated_distributions(parameter_name, parameter_dict)
            except (ValueError, jsonschema.ValidationError) as e:
                schema_violation_messages.append(e.args[0])

    return schema_violation_messages


class SweepConfig(dict):
    def __init__(self, d: Dict):
        if not isinstance(d, SweepConfig):
            # ensure the data conform to the schema
            schema_violation_messages = schema_violations_from_proposed_config(d)

            if len(schema_violation_messages) > 0:
                err_msg = "\n".join(schema_violation_messages)
                raise jsonschema.ValidationError(err_msg)

        copied_config = deepcopy(d)
        filled_config = fill_validate_schema(copied_config)
        super(SweepConfig, self).__init__(filled_config)

    def __str__(self) -> str:
        return yaml.safe_dump(self)

    def save(self, filename: Union[Path, str]) -> None:
        with open(filename, "w") as outfile:
            yaml.safe_dump(self, outfile, default_flow_style=False)
