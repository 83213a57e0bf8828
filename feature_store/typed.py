"""Typed settings: one strict base model, and validation errors a user can act on.

Every setting of the suite (a method's hyper-parameters, a profile's ``eval:``
block, a dataset spec) is a :class:`Settings` model: the field's type, its
default and a one-line docstring live in one place. Validation runs on
YAML-shaped data in pydantic's strict JSON mode, which is exactly the
semantics a YAML file has: ``2.9`` is not an int, ``"3"`` is not a number, an
``int`` is a valid ``float`` and a list is a valid tuple. Unknown keys are
refused (``extra="forbid"``); :func:`parse` turns pydantic's errors into one
line naming the dotted key, the value and what was expected, with a "did you
mean" for a misspelt key.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from typing import Any, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from feature_store.errors import ConfigError, LeadrankError


class Settings(BaseModel):
    """Base of every typed settings block: strict, frozen, unknown keys refused,
    field docstrings kept as descriptions (``leadrank list --params`` prints them)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples as lists), as recorded in result files."""
        return self.model_dump(mode="json")


S = TypeVar("S", bound=Settings)


def parse(model: type[S], data: Mapping[str, Any] | None, *, section: str = "",
          error: type[LeadrankError] = ConfigError, file: str | None = None, origin: str | None = None) -> S:
    """``data`` validated as ``model``; raises ``error`` with one line naming every problem (up to 5).

    ``section`` is the dotted prefix the keys are shown under (e.g. ``"ctr"``); ``file`` the file
    the values came from, or ``origin`` where they came from when that is not a file (``--set ...``)."""
    lead = f"{origin}: " if origin else ""
    if data is not None and not isinstance(data, Mapping):
        raise error(f"{lead}{section or 'settings'}: expected a mapping of keys to values, got {_show(data)}",
                    file=file)
    try:
        return model.model_validate_json(json.dumps(_string_keys(dict(data or {})), default=str), strict=True)
    except ValidationError as e:
        raise error(lead + "; ".join(describe(model, err, section) for err in e.errors()[:5]), file=file) from None


def describe(model: type[BaseModel], err: Mapping[str, Any], section: str = "") -> str:
    """One pydantic error as ``key = value: what is wrong``."""
    loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "json-or-python"))]
    key = ".".join(([section] if section else []) + loc)
    if err["type"] == "extra_forbidden":
        known = known_keys(model, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown key '{key}' ({guess}known: {', '.join(known)})"
    if err["type"] == "missing":
        return f"missing required key '{key}'"
    return f"{key} = {_show(err.get('input'))}: {err['msg'][0].lower()}{err['msg'][1:]}"


def known_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    """Field names of the (nested) model at ``path`` (through optional fields and dicts of models)."""
    node: Any = model
    for part in path:
        if _is_model(node):
            field = node.model_fields.get(part)
            node = _model_in(field.annotation) if field else None
        elif typing.get_origin(node) is dict:  # this part is a key of the dict: step into its values
            node = _model_in(typing.get_args(node)[1])
        else:
            return []
    return sorted(node.model_fields) if _is_model(node) else []


def _is_model(x: Any) -> bool:
    return isinstance(x, type) and issubclass(x, BaseModel)


def _model_in(annotation: Any) -> Any:
    """The model (or dict type) inside an optional annotation like ``Model | None``."""
    if _is_model(annotation) or typing.get_origin(annotation) is dict:
        return annotation
    return next((a for a in typing.get_args(annotation) if _is_model(a) or typing.get_origin(a) is dict), None)


def suggest(name: str, known: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'x'?)' for a close match, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _string_keys(value: Any) -> Any:
    """Mappings with every key as a string (YAML reads a key like 2024-01-01 as a date)."""
    if isinstance(value, Mapping):
        return {str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_string_keys(v) for v in value]
    return value


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (str, int, float, bool, list, dict)) or value is None \
        else repr(value)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-3`` is a number, not the string '1e-3'."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(text: str, *, file: str | None = None, error: type[LeadrankError] = ConfigError) -> Any:
    """Parse YAML text; a syntax error becomes ``error`` naming the line and column."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise error(f"not valid YAML: {where}{e.problem or e.context}", file=file) from None
    except yaml.YAMLError as e:
        raise error(f"not valid YAML: {e}".splitlines()[0], file=file) from None
