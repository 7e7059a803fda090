"""The configuration reference and the ``stf init`` template, generated from the pydantic models.

Both are derived from :class:`pipeline.config.RunConfig` (field names, types,
defaults, bounds, descriptions and each section's docstring), so they cannot
drift from what :func:`pipeline.config.load_config` accepts: ``docs/CONFIG.md``
is :func:`config_reference` verbatim (a test keeps it current; regenerate with
``python -m pipeline.configdoc > docs/CONFIG.md``).
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pipeline.config import RunConfig

#: Values of the required fields in the template (a small region of the demo's Po valley).
EXAMPLES: dict[str, str] = {
    "region": "{name: my-region, bbox: [11.00, 45.00, 11.10, 45.06]}  # lon/lat degrees",
    "time": "{start: 2024-04-01, end: 2024-09-30}",
}


def _type_name(annotation: Any) -> str:
    """A readable type: ``tuple[float, float, float, float] | None``, ``'tiny' | 'full'``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _value(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


def _yaml(value: Any) -> str:
    """A default as YAML flow text (tuples as lists, None as null)."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = _value(info)
    return "(section)" if isinstance(value, BaseModel) else f"`{_yaml(value)}`"


def _bounds(info: FieldInfo) -> str:
    names = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "pattern": "matches"}
    parts = [
        f"{sym} {getattr(m, key)}"
        for m in info.metadata
        for key, sym in names.items()
        if getattr(m, key, None) is not None
    ]
    return ", ".join(parts)


def _sections() -> list[tuple[str, type[BaseModel] | None, FieldInfo]]:
    out = []
    for name, info in RunConfig.model_fields.items():
        ann = info.annotation
        model = ann if inspect.isclass(ann) and issubclass(ann, BaseModel) else None
        out.append((name, model, info))
    return out


def _doc(model: type[BaseModel]) -> str:
    return inspect.cleandoc(model.__doc__ or "")


def config_reference() -> str:
    """``docs/CONFIG.md``: every section and field of a run configuration."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the pydantic models in `pipeline/config.py` (+ `config_stac.py`) by",
        "`python -m pipeline.configdoc > docs/CONFIG.md` (a test checks it is current).",
        "`stf init FILE` writes a commented template. Unknown keys are refused. Relative",
        "paths: `output_root` is relative to the working directory of the command (never",
        "to the config file's folder); input files (`model.weights`, `products.labels`, a",
        "`region.geojson` path) are relative to the config file's folder.",
        "",
        f"{_doc(RunConfig)}",
        "",
    ]
    for name, model, info in _sections():
        if model is None:
            lines += [
                f"## `{name}`",
                "",
                f"`{_type_name(info.annotation)}`, default "
                f"{_default(info)}. {info.description or ''}".rstrip(),
                "",
            ]
            continue
        lines += [f"## `{name}` ({model.__name__})", "", _doc(model), ""]
        lines += ["| field | type | default | constraints / meaning |", "|---|---|---|---|"]
        lines += _rows(name, model)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _nested(annotation: Any) -> type[BaseModel] | None:
    """The spec class inside ``X | None`` (a sub-section such as ``stac.fine``), else None."""
    for arg in (annotation, *typing.get_args(annotation)):
        if inspect.isclass(arg) and issubclass(arg, BaseModel):
            return arg
    return None


def _rows(prefix: str, model: type[BaseModel]) -> list[str]:
    """Table rows of ``model``'s fields, sub-sections' fields after their own row."""
    rows = []
    for field, finfo in model.model_fields.items():
        note = "; ".join(x for x in (_bounds(finfo), finfo.description or "") if x)
        cells = [f"`{prefix}.{field}`", f"`{_type_name(finfo.annotation)}`", _default(finfo)]
        cells = [c.replace("|", "\\|") for c in [*cells, note]]  # "|" would split a cell
        rows.append("| " + " | ".join(cells) + " |")
        sub = _nested(finfo.annotation)
        if sub is not None:
            rows += _rows(f"{prefix}.{field}", sub)
    return rows


def config_template() -> str:
    """A commented YAML run configuration: required fields filled with examples, the rest
    commented out at their defaults (uncomment to change)."""
    lines = ["# stf run configuration (reference: docs/CONFIG.md). Run: stf run THIS_FILE", ""]
    for name, model, info in _sections():
        if name in EXAMPLES:
            doc = _doc(model).splitlines()[0] if model else ""
            lines += [f"# {doc}", f"{name}: {EXAMPLES[name]}", ""]
            continue
        if model is None:
            lines += [f"# {name}: {_default(info).strip('`')}", ""]
            continue
        lines.append(f"# {_doc(model).splitlines()[0]}")
        lines.append(f"# {name}:")
        for field, finfo in model.model_fields.items():
            value = _default(finfo).strip("`")
            note = "; ".join(x for x in (_bounds(finfo), finfo.description or "") if x)
            lines.append(f"#   {field}: {value}" + (f"  # {note}" if note else ""))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(config_reference())
