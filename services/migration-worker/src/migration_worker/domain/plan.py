"""The declarative migration plan, validated from YAML.

A plan names its source (a CSV folder or a PostgreSQL database), the target schema and the entities in
dependency order. Each entity maps source columns to target columns through transforms, declares its
legacy key, optional de-duplication and validation rules.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from migration_worker.domain.dates import DateFormatError, compile_format

IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")

FieldType = Literal["text", "integer", "bigint", "numeric", "boolean", "date", "timestamptz"]
Severity = Literal["error", "warning"]
NUMERIC_TYPES = ("integer", "bigint", "numeric")


class PlanError(ValueError):
    """A plan that cannot be used; the message lists every problem with its location in the file."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid migration plan:\n" + "\n".join(f"  - {p}" for p in problems))


def _ident(value: str) -> str:
    if not IDENT.match(value):
        raise ValueError(f"{value!r} is not a valid identifier (lower-case letters, digits, underscore)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# ---- transforms -----------------------------------------------------------------------------------------


class Trim(_Strict):
    kind: Literal["trim"] = "trim"


class Lower(_Strict):
    kind: Literal["lower"] = "lower"


class Upper(_Strict):
    kind: Literal["upper"] = "upper"


class Title(_Strict):
    kind: Literal["title"] = "title"


class CollapseSpaces(_Strict):
    kind: Literal["collapse_spaces"] = "collapse_spaces"


class PhoneE164(_Strict):
    kind: Literal["phone_e164"] = "phone_e164"


class ParseDate(_Strict):
    kind: Literal["parse_date"] = "parse_date"
    formats: list[str] = Field(min_length=1)

    @field_validator("formats")
    @classmethod
    def _formats_compile(cls, formats: list[str]) -> list[str]:
        for fmt in formats:
            try:
                compile_format(fmt)
            except DateFormatError as exc:
                raise ValueError(str(exc)) from exc
        return formats


class ParseTimestamp(ParseDate):
    kind: Literal["parse_timestamp"] = "parse_timestamp"  # type: ignore[assignment]


class MapValues(_Strict):
    kind: Literal["map"] = "map"
    values: dict[str, str]
    default: str | None = None


class Default(_Strict):
    kind: Literal["default"] = "default"
    value: str


class MoneyMinor(_Strict):
    kind: Literal["money_minor"] = "money_minor"
    exponent: int = Field(2, ge=0, le=4)


class RegexReplace(_Strict):
    kind: Literal["regex_replace"] = "regex_replace"
    pattern: str
    replacement: str = ""


Transform = Annotated[
    Trim
    | Lower
    | Upper
    | Title
    | CollapseSpaces
    | PhoneE164
    | ParseDate
    | ParseTimestamp
    | MapValues
    | Default
    | MoneyMinor
    | RegexReplace,
    Field(discriminator="kind"),
]

TERMINAL_TRANSFORMS = ("parse_date", "parse_timestamp", "money_minor", "phone_e164")


def _normalise_transform(item: Any) -> Any:
    """YAML spells transforms tersely: `trim`, `{parse_date: [fmt]}`, `{map: {...}, default: x}`."""
    if isinstance(item, str):
        return {"kind": item}
    if isinstance(item, dict) and "kind" not in item:
        if "map" in item:
            return {"kind": "map", "values": item["map"], **{k: v for k, v in item.items() if k != "map"}}
        if len(item) == 1:
            ((kind, arg),) = item.items()
            if kind in ("parse_date", "parse_timestamp"):
                return {"kind": kind, "formats": [arg] if isinstance(arg, str) else arg}
            if kind == "default":
                return {"kind": "default", "value": str(arg)}
            if kind == "money_minor":
                return {"kind": "money_minor", "exponent": arg}
            if kind == "regex_replace" and isinstance(arg, list) and len(arg) == 2:
                return {"kind": "regex_replace", "pattern": arg[0], "replacement": arg[1]}
            return {"kind": kind, **(arg if isinstance(arg, dict) else {})}
    return item


# ---- fields, rules, entities ----------------------------------------------------------------------------


class FieldSpec(_Strict):
    """One target column: taken `from` a source column, computed by `expr` (SQL over source columns),
    or a constant `value`; then transformed and cast to `type`. A `reference` names an earlier entity
    whose legacy key this value is; the target column then receives that entity's new id."""

    source: str | None = Field(None, alias="from")
    expr: str | None = None
    value: str | None = None
    transforms: list[Transform] = []
    type: FieldType = "text"
    reference: str | None = None
    on_invalid: Severity = "error"

    @field_validator("transforms", mode="before")
    @classmethod
    def _terse(cls, value: Any) -> Any:
        return [_normalise_transform(t) for t in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _one_origin(self) -> FieldSpec:
        origins = [o for o in (self.source, self.expr, self.value) if o is not None]
        if len(origins) > 1:
            raise ValueError("give only one of `from`, `expr`, `value`")
        if not origins and not any(isinstance(t, Default) for t in self.transforms):
            raise ValueError("a field needs `from`, `expr`, `value` or a `default` transform")
        for position, transform in enumerate(self.transforms):
            if transform.kind in TERMINAL_TRANSFORMS and position != len(self.transforms) - 1:
                raise ValueError(f"transform `{transform.kind}` produces a typed value and must come last")
        last = self.transforms[-1].kind if self.transforms else None
        expected = {"parse_date": "date", "parse_timestamp": "timestamptz", "money_minor": "bigint"}
        if last in expected and self.type not in (expected[last], "text"):
            raise ValueError(f"transform `{last}` yields {expected[last]}, but the field type is {self.type}")
        return self

    @property
    def output_type(self) -> str:
        last = self.transforms[-1].kind if self.transforms else None
        implied = {"parse_date": "date", "parse_timestamp": "timestamptz", "money_minor": "bigint"}
        if last in implied and self.type == "text":
            return implied[last]
        return self.type


class Validation(_Strict):
    rule: Literal["required", "unique", "format", "range", "reference"]
    field: str
    severity: Severity = "error"
    pattern: str | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _params(self) -> Validation:
        if self.rule == "format" and not self.pattern:
            raise ValueError("a `format` rule needs a `pattern` (a POSIX regular expression)")
        if self.rule == "format" and self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"`pattern` is not a regular expression: {exc}") from exc
        if self.rule == "range" and self.min is None and self.max is None:
            raise ValueError("a `range` rule needs `min` and/or `max`")
        return self

    @property
    def name(self) -> str:
        return f"{self.rule}:{self.field}"


class Dedupe(_Strict):
    """Rows sharing a legacy key are merged into one; `keep` picks the survivor by `order_by`, or by
    position in the source without it."""

    keep: Literal["earliest", "latest"] = "earliest"
    order_by: str | None = None


class EntitySource(_Strict):
    """Where an entity's rows come from. `file` for a CSV source, `table` or `query` for PostgreSQL,
    `sql` to derive rows from entities already prepared, with `{entity}` placeholders."""

    file: str | None = None
    table: str | None = None
    query: str | None = None
    sql: str | None = None
    where: str | None = None

    @model_validator(mode="after")
    def _one(self) -> EntitySource:
        given = [x for x in (self.file, self.table, self.query, self.sql) if x]
        if len(given) != 1:
            raise ValueError("an entity source needs exactly one of `file`, `table`, `query`, `sql`")
        return self

    @property
    def derived_from(self) -> list[str]:
        return PLACEHOLDER.findall(self.sql or "")

    @property
    def stage_name(self) -> str:
        """Entities reading the same file/table share one staged copy of it."""
        if self.file:
            return "f_" + re.sub(r"[^a-z0-9_]", "_", Path(self.file).stem.lower())
        if self.table:
            return "t_" + re.sub(r"[^a-z0-9_]", "_", self.table.lower())
        return ""


class Entity(_Strict):
    name: str
    source: EntitySource
    target_table: str
    legacy_key: FieldSpec
    fields: dict[str, FieldSpec]
    dedupe: Dedupe | None = None
    validations: list[Validation] = []
    on_conflict: Literal["update", "nothing"] = "update"

    _name_ok = field_validator("name", "target_table")(_ident)

    @field_validator("fields")
    @classmethod
    def _field_names(cls, fields: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        for name in fields:
            _ident(name)
        if not fields:
            raise ValueError("an entity maps at least one field")
        return fields

    @model_validator(mode="after")
    def _rules_name_fields(self) -> Entity:
        known = set(self.fields)
        for rule in self.validations:
            if rule.field not in known and rule.field != "legacy_key":
                raise ValueError(f"validation {rule.name} names unknown field {rule.field!r}")
            if rule.rule == "reference" and (rule.field not in known or self.fields[rule.field].reference is None):
                raise ValueError(f"validation {rule.name}: field {rule.field!r} has no `reference`")
            spec = self.fields.get(rule.field, self.legacy_key)
            if rule.rule == "range" and spec.output_type not in NUMERIC_TYPES:
                raise ValueError(
                    f"validation {rule.name}: a range needs a number (integer, bigint or numeric), "
                    f"but {rule.field!r} is {spec.output_type}"
                )
        if self.dedupe and self.dedupe.order_by and self.dedupe.order_by not in known:
            raise ValueError(f"dedupe.order_by names unknown field {self.dedupe.order_by!r}")
        return self


class SourceConfig(_Strict):
    kind: Literal["csv", "postgres"]
    path: str | None = None
    dsn: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"


class TargetConfig(_Strict):
    schema_name: str = Field("public", alias="schema")
    legacy_key_column: str = "legacy_key"
    id_column: str = "id"

    _idents = field_validator("schema_name", "legacy_key_column", "id_column")(_ident)


class PlanOptions(_Strict):
    batch_size: int = Field(20_000, ge=1, le=1_000_000)
    go_threshold_pct: float = Field(1.0, ge=0, le=100)
    source_timezone: str = "UTC"
    example_rows: int = Field(3, ge=0, le=50)

    @field_validator("source_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Africa/Harare)") from exc
        return value


class Plan(_Strict):
    name: str
    description: str = ""
    version: int = 1
    source: SourceConfig
    target: TargetConfig = TargetConfig()
    options: PlanOptions = PlanOptions()
    entities: list[Entity] = Field(min_length=1)

    @model_validator(mode="after")
    def _dependency_order(self) -> Plan:
        seen: set[str] = set()
        for entity in self.entities:
            if entity.name in seen:
                raise ValueError(f"entity {entity.name!r} is declared twice")
            for name, spec in {"legacy_key": entity.legacy_key, **entity.fields}.items():
                if spec.reference and spec.reference not in seen:
                    raise ValueError(
                        f"entity {entity.name!r} field {name!r} references {spec.reference!r}, "
                        "which must be declared before it (entities are in dependency order)"
                    )
            for dep in entity.source.derived_from:
                if dep not in seen:
                    raise ValueError(f"entity {entity.name!r} derives from {dep!r}, which must come first")
            if self.source.kind == "csv" and (entity.source.table or entity.source.query):
                raise ValueError(f"entity {entity.name!r}: a CSV plan reads `file`s, not tables or queries")
            if self.source.kind == "postgres" and entity.source.file:
                raise ValueError(f"entity {entity.name!r}: a PostgreSQL plan reads `table` or `query`")
            seen.add(entity.name)
        return self

    def entity(self, name: str) -> Entity:
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(name)

    @property
    def target_tables(self) -> list[str]:
        return list(dict.fromkeys(e.target_table for e in self.entities))


# pydantic puts the union member's class name into error locations; they mean nothing to a plan author
_UNION_TAGS = (
    frozenset(
        [
            "Trim",
            "Lower",
            "Upper",
            "Title",
            "CollapseSpaces",
            "PhoneE164",
            "ParseDate",
            "ParseTimestamp",
            "MapValues",
            "Default",
            "MoneyMinor",
            "RegexReplace",
        ]
    )
    | frozenset(TERMINAL_TRANSFORMS)
    | frozenset(["trim", "lower", "upper", "title", "collapse_spaces", "map", "default", "regex_replace"])
)


def _location(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            node = node[item]
            name = node.get("name") if isinstance(node, dict) else None
            parts.append(f"[{name}]" if name else f"[{item}]")
        elif isinstance(item, str) and item in _UNION_TAGS:
            continue
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(f".{item}")
    return "".join(parts).lstrip(".") or "<plan>"


def parse_plan(text: str, origin: str = "<plan>") -> Plan:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlanError([f"{origin}: not valid YAML: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise PlanError([f"{origin}: a plan is a YAML mapping with `name`, `source` and `entities`"])
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{origin}: {_location(err['loc'], raw)}: {err['msg']}" for err in exc.errors()]
        raise PlanError(problems) from exc


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError([f"{path}: cannot read the plan file: {exc.strerror or exc}"]) from exc
    return parse_plan(text, origin=str(path))
