"""``leadrank list --params NAME``: a method's settings as a table a user can act on."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from tabulate import tabulate

import leadrank_api as api
from benchmark import registry
from benchmark.profile import Profile


def describe_params(name: str, profile: Profile) -> str:
    """Every key the method reads (section.key), its type, its default, the profile's value and the doc;
    then the options its variants may fix and, for a variant, what it fixes."""
    cls = registry.get(name)
    settings = api.method_settings(cls, profile.config)
    rows = []
    for section, model in cls.params.items():
        rows += _rows(model, section, settings[section])
    parts = [f"{cls.name} ({cls.family}): {cls.description}",
             tabulate(rows, headers=["key", "type", "default", f"value ({profile.name})", "doc"], tablefmt="simple")
             if rows else "(no settings)"]
    if cls.Options.model_fields:
        opt_rows = _rows(cls.Options, "options", cls.options)
        parts.append("Options a variant fixes (variants.yaml, `options:`):\n"
                     + tabulate(opt_rows, headers=["key", "type", "default", "this method", "doc"], tablefmt="simple"))
    if cls.overrides:
        parts.append(f"Settings fixed by this variant (take precedence over the profile): {cls.overrides}")
    return "\n\n".join(parts)


def _rows(model: type[BaseModel], prefix: str, values: BaseModel) -> list[list[Any]]:
    rows = []
    for key, f in model.model_fields.items():
        value = getattr(values, key)
        if isinstance(value, BaseModel):
            rows += _rows(type(value), f"{prefix}.{key}", value)
            continue
        rows.append([f"{prefix}.{key}", _type_name(f.annotation), _show(f.default), _show(value),
                     (f.description or "").split("\n")[0]])
    return rows


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _show(value: Any) -> str:
    return "null" if value is None else str(list(value) if isinstance(value, tuple) else value)
