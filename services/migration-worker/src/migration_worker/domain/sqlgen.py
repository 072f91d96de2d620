"""Set-based SQL generated from a plan entity.

Transforms and validations run inside PostgreSQL over a staged copy of the source, because per-row
Python cannot reach the throughput the schools' windows need. Expressions are layered in sub-queries
fenced with OFFSET 0 so each intermediate value is computed once per row, not once per reference.

Layer 1 (l1): text pipelines over the raw row (`t_<field>`), and the origin value (`s_<field>`) passed
through for the "was the source value present" test, which runs only where a value came out NULL.
Layer 2 (l2): typed values: terminal transforms (dates, money, phone) and safe casts.
Layer 3: reference look-ups (legacy key -> new id) and the error / warning arrays per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migration_worker.domain.dates import (
    DEFAULT_DATE_FORMATS,
    DEFAULT_TIMESTAMP_FORMATS,
    CompiledFormat,
    compile_format,
)
from migration_worker.domain.plan import (
    TERMINAL_TRANSFORMS,
    Default,
    Entity,
    FieldSpec,
    MapValues,
    MoneyMinor,
    ParseDate,
    ParseTimestamp,
    PhoneE164,
    RegexReplace,
    Transform,
)

LEGACY = "legacy_key"


def q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def bare(ident: str) -> str:
    """The identifier `q` quoted, unquoted again."""
    return ident.strip('"').replace('""', '"')


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _reasons(rules: list[tuple[str, str]]) -> str:
    """The reasons whose condition holds, as a text[]. Nearly every row passes every rule, so the array is
    only built (one CASE per rule, then array_remove) for a row where some condition holds."""
    if not rules:
        return "'{}'::text[]"
    cases = ", ".join(f"CASE WHEN {cond} THEN {lit(reason)} END" for cond, reason in rules)
    any_hit = " OR ".join(f"({cond})" for cond, _ in rules)
    return f"CASE WHEN {any_hit} THEN array_remove(ARRAY[{cases}]::text[], NULL) ELSE '{{}}'::text[] END"


def _num(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class RefTarget:
    """How a reference to another entity resolves: its target table and, in a dry run, its prepared rows."""

    table: str  # qualified
    id_column: str
    id_type: str
    legacy_column: str
    prepared: str | None = None  # qualified clean table; set in dry runs, where nothing is loaded yet


@dataclass(frozen=True)
class EntitySql:
    entity: Entity
    raw: str  # qualified raw (staged) relation, with a bigint _row_no
    clean: str  # qualified prepared relation
    target: str  # qualified target table
    legacy_column: str
    typed_source: bool  # False for CSV (every column is text)
    timezone: str
    refs: dict[str, RefTarget] = field(default_factory=dict)  # entity name -> how to resolve

    # ---- column inventory ------------------------------------------------------------------------------

    @property
    def specs(self) -> dict[str, FieldSpec]:
        return {LEGACY: self.entity.legacy_key, **self.entity.fields}

    def clean_type(self, name: str, spec: FieldSpec) -> str:
        if spec.reference:
            return self.refs[spec.reference].id_type
        return spec.output_type

    @staticmethod
    def _beside(relation: str, letter: str) -> str:
        """The bare name of an index beside a staging relation: `s<job>_<name>` -> `<letter><job>_<name>`."""
        return letter + bare(relation.rsplit(".", 1)[-1])[1:]

    @property
    def raw_index(self) -> str:
        """Name of the raw table's btree on `_row_no` (same schema)."""
        return self._beside(self.raw, "i")

    @property
    def raw_index_ddl(self) -> str:
        """The raw table's btree on `_row_no`, through which each batch's reject log fetches its few
        rejected raw rows."""
        return f"CREATE INDEX IF NOT EXISTS {q(self.raw_index)} ON {self.raw} (_row_no)"

    @property
    def key_probe_ddl(self) -> str:
        """A unique index on the valid prepared rows' legacy keys, in byte order: under the database's
        (deterministic) collation two keys are equal exactly when their bytes are. It builds only when no two
        valid rows share a key, and a parallel sort builds it in about half the time the duplicate search
        takes to hash every key on one core. Only for a prepared table that is not partitioned."""
        keys = '(_legacy_key COLLATE "C")'
        return f"CREATE UNIQUE INDEX {q(self._beside(self.clean, 'k'))} ON {self.clean} ({keys}) WHERE _status = 'v'"

    @property
    def key_probe_index(self) -> str:
        """The qualified name of `key_probe_ddl`'s index, to drop it once it has proved its point."""
        return f"{self.clean.rsplit('.', 1)[0]}.{q(self._beside(self.clean, 'k'))}"

    @property
    def analyzed_columns(self) -> list[str]:
        """The prepared columns statements filter, group or join on: row ranges, status, legacy key, and
        the fields of the set-wide rules (unique, de-duplication order)."""
        cols = ["_row_no", "_status", "_legacy_key"]
        cols += [r.field for r in self.entity.validations if r.rule == "unique" and r.field != LEGACY]
        if self.entity.dedupe and self.entity.dedupe.order_by:
            cols.append(self.entity.dedupe.order_by)
        return list(dict.fromkeys(cols))

    def _clean_columns(self) -> str:
        cols = [f"{q('_row_no')} bigint NOT NULL", f"{q('_legacy_key')} text"]
        cols += [f"{q(n)} {self.clean_type(n, s)}" for n, s in self.entity.fields.items()]
        cols += ["_errors text[] NOT NULL", "_warnings text[] NOT NULL", '_status "char" NOT NULL']
        return ", ".join(cols)

    def clean_ddl(self, temporary: bool) -> str:
        kind = "TEMPORARY" if temporary else "UNLOGGED"
        return f"CREATE {kind} TABLE IF NOT EXISTS {self.clean} ({self._clean_columns()})"

    def clean_part(self, index: int) -> str:
        """The qualified partition of the prepared table that holds prepare chunk `index`."""
        schema, name = self.clean.split(".", 1)
        suffix = f"_p{index}"
        return f"{schema}.{q(bare(name)[: 63 - len(suffix)] + suffix)}"

    def clean_partitioned_ddl(self, chunks: list[tuple[int, int]]) -> list[str]:
        """The run's prepared table, partitioned by `_row_no` with one UNLOGGED partition per prepare chunk
        ($1, $2]: the chunks insert on parallel connections, and into one shared table (heap and index)
        they measured 20-30 % more CPU per row than into tables of their own. Every other statement reads
        and updates the partitioned table; a `_row_no` range prunes it to its partitions."""
        ddl = [f"CREATE TABLE {self.clean} ({self._clean_columns()}) PARTITION BY RANGE (_row_no)"]
        for i, (lo, hi) in enumerate(chunks):
            ddl.append(
                f"CREATE UNLOGGED TABLE {self.clean_part(i)} PARTITION OF {self.clean} "
                f"FOR VALUES FROM ({int(lo) + 1}) TO ({int(hi) + 1})"
            )
        return ddl

    # ---- layer 1: text pipelines ---------------------------------------------------------------------

    def _origin(self, spec: FieldSpec) -> tuple[str, bool]:
        """The starting expression and whether it is still typed (no text pipeline applied)."""
        if spec.value is not None:
            return f"{lit(spec.value)}::text", False
        if spec.expr is not None:
            base = f"({spec.expr})"
        elif spec.source is not None:
            base = f"r.{q(spec.source)}"
        else:
            return "NULL::text", False
        if self.typed_source or spec.expr is not None:
            if not spec.transforms:
                return base, True
            return f"nullif({base}::text, '')", False
        return f"nullif({base}, '')", False

    @staticmethod
    def _has_origin(spec: FieldSpec) -> bool:
        return spec.value is None and (spec.source is not None or spec.expr is not None)

    def _present(self, name: str, spec: FieldSpec) -> str:
        """Was the source value present (non-blank)? Evaluated over the origin column passed through the
        layers, and placed after an IS NULL test in every rule, so it is computed only for the rare row
        whose value came out NULL instead of for every field of every row."""
        if not self._has_origin(spec):
            return "false"
        origin = f"l2.{q('s_' + name)}"
        if self._origin(spec)[1]:
            return f"({origin} IS NOT NULL)"
        return f"(nullif(btrim({origin}), '') IS NOT NULL)"

    @staticmethod
    def _apply(expr: str, t: Transform) -> str:
        match t.kind:
            case "trim":
                return f"nullif(btrim({expr}), '')"
            case "lower":
                return f"lower({expr})"
            case "upper":
                return f"upper({expr})"
            case "title":
                return f"initcap({expr})"
            case "collapse_spaces":
                return f"regexp_replace({expr}, '\\s+', ' ', 'g')"
            case "map":
                assert isinstance(t, MapValues)
                whens = " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in t.values.items())
                fallback = lit(t.default) if t.default is not None else "NULL"
                return f"(CASE {expr} {whens} ELSE {fallback} END)"
            case "default":
                assert isinstance(t, Default)
                return f"coalesce({expr}, {lit(t.value)})"
            case "regex_replace":
                assert isinstance(t, RegexReplace)
                return f"regexp_replace({expr}, {lit(t.pattern)}, {lit(t.replacement)}, 'g')"
        raise AssertionError(f"unhandled transform {t.kind}")

    def _layer1(self, name: str, spec: FieldSpec) -> list[str]:
        expr, _ = self._origin(spec)
        terminal = spec.transforms[-1] if spec.transforms else None
        # The source column itself, while every transform so far keeps "printable ASCII with no double
        # space" true (then collapse_spaces is the identity and its regex can be skipped).
        plain = f"r.{q(spec.source)}" if spec.source is not None and spec.expr is None and spec.value is None else None
        if plain and self.typed_source:
            plain += "::text"
        for t in spec.transforms:
            if t is terminal and t.kind in TERMINAL_TRANSFORMS:
                break
            if t.kind == "collapse_spaces" and plain:
                # Most values need no collapsing: a test of the source costs half the regex it skips.
                expr = (
                    f"CASE WHEN strpos({plain}, '  ') = 0 AND {plain} !~ '[^ -~]' THEN {expr} "
                    f"ELSE {self._apply(expr, t)} END"
                )
                continue
            expr = self._apply(expr, t)
            if t.kind not in ("trim", "lower", "upper", "title"):
                plain = None
        cols = [f"{expr} AS {q('t_' + name)}"]
        if self._has_origin(spec):
            cols.append(f"{self._origin(spec)[0]} AS {q('s_' + name)}")
        if isinstance(terminal, PhoneE164):
            stripped = expr
            for ch in " -().":
                stripped = f"replace({stripped}, '{ch}', '')"
            cols[0] = f"{stripped} AS {q('t_' + name)}"
        elif isinstance(terminal, MoneyMinor):
            cols[0] = f"replace(replace(replace({expr}, '$', ''), ',', ''), ' ', '') AS {q('t_' + name)}"
        return cols

    # ---- layer 2: typed values -------------------------------------------------------------------------

    def date_formats(self, spec: FieldSpec) -> tuple[list[CompiledFormat], bool] | None:
        """The formats a field's text is parsed with (and whether with time), or None if it is not parsed.
        Mirrors the choice `_layer2` makes."""
        if self._origin(spec)[1]:
            return None
        terminal = spec.transforms[-1] if spec.transforms else None
        if isinstance(terminal, ParseTimestamp):
            return [compile_format(f) for f in terminal.formats], True
        if isinstance(terminal, ParseDate):
            return [compile_format(f) for f in terminal.formats], False
        if isinstance(terminal, (MoneyMinor, PhoneE164)):
            return None
        if spec.output_type == "date":
            return [compile_format(f) for f in DEFAULT_DATE_FORMATS], False
        if spec.output_type == "timestamptz":
            return [compile_format(f) for f in DEFAULT_TIMESTAMP_FORMATS], True
        return None

    @staticmethod
    def _digits_column(name: str, index: int) -> str:
        return q(f"n{index}_{name}")

    def _digit_columns(self, name: str, spec: FieldSpec, v: str) -> list[str]:
        """Per date format, the value's digits as one bigint when the value has exactly the format's shape
        (else NULL), computed once per row: the components are then cheap integer arithmetic instead of a
        dozen substr()::int calls each. The shape is proven without regex: LIKE fixes the length and the
        separators' places, ltrim proves only digits and separators occur, and the digit count after
        removing the separators proves no separator sits where a digit belongs."""
        parsed = self.date_formats(spec)
        if parsed is None:
            return []
        cols = []
        for i, f in enumerate(parsed[0]):
            separators = sorted(set(f.shape) - {"9"})
            stripped = v
            for ch in separators:
                stripped = f"replace({stripped}, {lit(ch)}, '')"
            like = lit("".join("_" if ch == "9" else ch for ch in f.shape).replace("%", "\\%"))
            allowed = lit("0123456789" + "".join(separators))
            cols.append(
                f"CASE WHEN {v} LIKE {like} AND ltrim({v}, {allowed}) = '' AND length({stripped}) = "
                f"{f.shape.count('9')} THEN {stripped}::bigint END AS {self._digits_column(name, i)}"
            )
        return cols

    def _parse_digits(self, name: str, formats: list[CompiledFormat], with_time: bool) -> str:
        """`_parse` over the digit columns of `_digit_columns`."""
        options = []
        for i, f in enumerate(formats):
            n = f"l1.{self._digits_column(name, i)}"
            total = f.shape.count("9")

            def part(component: str, f: CompiledFormat = f, n: str = n, total: int = total) -> str:
                start, width = f.positions[component]
                offset = f.shape[: start - 1].count("9")
                return f"({n} / {10 ** (total - offset - width)} % {10**width})"

            y, m, d = part("year"), part("month"), part("day")
            days_in_month = (
                f"CASE WHEN {m} IN (4, 6, 9, 11) THEN 30 WHEN {m} = 2 THEN CASE WHEN ({y} % 4 = 0 AND "
                f"{y} % 100 <> 0) OR {y} % 400 = 0 THEN 29 ELSE 28 END ELSE 31 END"
            )
            checks = [f"{y} >= 1", f"{m} BETWEEN 1 AND 12", f"{d} >= 1", f"({d} <= 28 OR {d} <= {days_in_month})"]
            if with_time:
                hh, mi, ss = (part(c) if c in f.positions else "0" for c in ("hour", "minute", "second"))
                checks += [f"{hh} <= 23", f"{mi} <= 59", f"{ss} <= 59"]
                made = (
                    f"(make_timestamp({y}::int, {m}::int, {d}::int, {hh}::int, {mi}::int, {ss}::int) "
                    f"AT TIME ZONE {lit(self.timezone)})"
                )
            else:
                made = f"make_date({y}::int, {m}::int, {d}::int)"
            options.append(f"CASE WHEN {n} IS NOT NULL THEN CASE WHEN {' AND '.join(checks)} THEN {made} END END")
        return options[0] if len(options) == 1 else f"coalesce({', '.join(options)})"

    def _parse(self, v: str, formats: list[CompiledFormat], with_time: bool) -> str:
        # translate() + substr() arithmetic instead of regular expressions: PostgreSQL's regex engine
        # costs microseconds per row, which alone would halve the engine's throughput.
        options = []
        for f in formats:
            part = {c: f"substr({v}, {s}, {w})::int" for c, (s, w) in f.positions.items()}
            y, m, d = part["year"], part["month"], part["day"]
            days_in_month = (
                f"CASE WHEN {m} IN (4, 6, 9, 11) THEN 30 WHEN {m} = 2 THEN CASE WHEN ({y} % 4 = 0 AND "
                f"{y} % 100 <> 0) OR {y} % 400 = 0 THEN 29 ELSE 28 END ELSE 31 END"
            )
            checks = [f"{y} >= 1", f"{m} BETWEEN 1 AND 12", f"{d} >= 1", f"({d} <= 28 OR {d} <= {days_in_month})"]
            if with_time:
                hh, mi, ss = (part.get(c, "0") for c in ("hour", "minute", "second"))
                checks += [f"{hh} <= 23", f"{mi} <= 59", f"{ss} <= 59"]
                made = f"(make_timestamp({y}, {m}, {d}, {hh}, {mi}, {ss}) AT TIME ZONE {lit(self.timezone)})"
            else:
                made = f"make_date({y}, {m}, {d})"
            # Nested CASEs (a CASE evaluates in order, AND may not): LIKE picks the format cheaply, ltrim
            # proves each component is digits, and only then do the casts and range checks run.
            like = lit("".join("_" if ch == "9" else ch for ch in f.shape).replace("%", "\\%"))
            digits = " AND ".join(f"ltrim(substr({v}, {s}, {w}), '0123456789') = ''" for s, w in f.positions.values())
            options.append(
                f"CASE WHEN {v} LIKE {like} THEN CASE WHEN {digits} THEN "
                f"CASE WHEN {' AND '.join(checks)} THEN {made} END END END"
            )
        return options[0] if len(options) == 1 else f"coalesce({', '.join(options)})"

    def _safe_cast(self, v: str, to: str) -> str:
        match to:
            case "text":
                return v
            case "integer":
                return f"CASE WHEN {v} ~ '^\\s*[+-]?\\d{{1,9}}\\s*$' THEN {v}::integer END"
            case "bigint":
                return f"CASE WHEN {v} ~ '^\\s*[+-]?\\d{{1,18}}\\s*$' THEN {v}::bigint END"
            case "numeric":
                pattern = "'^\\s*[+-]?(\\d{1,30}(\\.\\d{0,20})?|\\.\\d{1,20})\\s*$'"
                return f"CASE WHEN {v} ~ {pattern} THEN {v}::numeric END"
            case "boolean":
                return (
                    f"CASE lower(btrim({v})) WHEN 'true' THEN true WHEN 't' THEN true WHEN 'yes' THEN true "
                    f"WHEN 'y' THEN true WHEN '1' THEN true WHEN 'false' THEN false WHEN 'f' THEN false "
                    f"WHEN 'no' THEN false WHEN 'n' THEN false WHEN '0' THEN false END"
                )
            case "date":
                return self._parse(v, [compile_format(f) for f in DEFAULT_DATE_FORMATS], with_time=False)
            case "timestamptz":
                return self._parse(v, [compile_format(f) for f in DEFAULT_TIMESTAMP_FORMATS], with_time=True)
        raise AssertionError(f"unhandled type {to}")

    @staticmethod
    def _phone(v: str) -> str:
        """E.164 for the forms Zimbabwean legacy data holds (07x, 7x, 2637x, 002637x, +263 7x) and for any
        number written internationally (+ or 00). Plain string functions, no regex, for speed; the
        unit tests hold this against the phonenumbers library."""
        digits = f"ltrim({v}, '0123456789') = ''"

        def mobile(at: int) -> str:
            # Econet 77/78, NetOne 71, Telecel 731-739 (the numbering plan phonenumbers also uses)
            return (
                f"(substr({v}, {at}, 2) IN ('71', '77', '78') "
                f"OR substr({v}, {at}, 2) = '73' AND substr({v}, {at + 2}, 1) <> '0')"
            )

        return (
            f"CASE WHEN {v} IS NULL OR left({v}, 1) = '+' AND NOT ltrim(substr({v}, 2), '0123456789') = '' "
            f"OR left({v}, 1) <> '+' AND NOT {digits} THEN NULL "
            f"WHEN left({v}, 1) = '+' THEN CASE WHEN length({v}) BETWEEN 9 AND 16 AND substr({v}, 2, 1) <> '0' "
            f"AND (left({v}, 4) <> '+263' OR length({v}) = 13 AND {mobile(5)}) THEN {v} END "
            f"WHEN length({v}) = 12 AND left({v}, 3) = '263' AND {mobile(4)} THEN '+' || {v} "
            f"WHEN length({v}) = 14 AND left({v}, 5) = '00263' AND {mobile(6)} THEN '+' || substr({v}, 3) "
            f"WHEN length({v}) BETWEEN 10 AND 17 AND left({v}, 2) = '00' AND substr({v}, 3, 1) <> '0' "
            f"AND left({v}, 5) <> '00263' THEN '+' || substr({v}, 3) "
            f"WHEN length({v}) = 10 AND left({v}, 1) = '0' AND {mobile(2)} THEN '+263' || substr({v}, 2) "
            f"WHEN length({v}) = 9 AND {mobile(1)} THEN '+263' || {v} END"
        )

    def _layer2(self, name: str, spec: FieldSpec) -> str:
        v = f"l1.{q('t_' + name)}"
        terminal = spec.transforms[-1] if spec.transforms else None
        _, typed = self._origin(spec)
        parsed = self.date_formats(spec)
        if parsed is not None:
            value = self._parse_digits(name, *parsed)
        elif typed:
            value = f"{v}::{spec.output_type}"
        elif isinstance(terminal, ParseTimestamp):
            value = self._parse(v, [compile_format(f) for f in terminal.formats], with_time=True)
        elif isinstance(terminal, ParseDate):
            value = self._parse(v, [compile_format(f) for f in terminal.formats], with_time=False)
        elif isinstance(terminal, MoneyMinor):
            scale = 10**terminal.exponent
            value = (
                f"CASE WHEN length({v}) BETWEEN 1 AND 20 AND ltrim({v}, '0123456789.-') = '' "
                f"AND {v} NOT LIKE '%.%.%' AND {v} NOT LIKE '_%-%' AND {v} NOT IN ('.', '-', '-.') "
                # An amount whose minor units overflow bigint is invalid, not an error that aborts the statement.
                f"THEN CASE WHEN abs({v}::numeric) * {scale} < 9223372036854775807 "
                f"THEN round({v}::numeric * {scale})::bigint END END"
            )
        elif isinstance(terminal, PhoneE164):
            value = self._phone(v)
        else:
            value = self._safe_cast(v, spec.output_type)
        if spec.output_type != spec.type and spec.type != "text":
            value = f"({value})::{spec.type}"
        column = ("k_" if spec.reference else "") + name
        origin = f", l1.{q('s_' + name)}" if self._has_origin(spec) else ""
        return f"{value} AS {q(column)}{origin}"

    # ---- layer 3: references and rules ---------------------------------------------------------------

    def _ref_alias(self, name: str) -> str:
        return q("j_" + name)

    def _checks(self) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
        """The reference joins, and the error and warning rules as (condition, reason) pairs."""
        errors: list[tuple[str, str]] = [(f"l2.{q(LEGACY)} IS NULL", "required:legacy_key")]
        warnings: list[tuple[str, str]] = []
        joins: list[str] = []
        overrides = {(v.rule, v.field): v.severity for v in self.entity.validations}
        for name, spec in self.specs.items():
            col = f"l2.{q(('k_' if spec.reference else '') + name)}"
            bucket = errors if spec.on_invalid == "error" else warnings
            bucket.append((f"{col} IS NULL AND {self._present(name, spec)}", f"invalid:{name}"))
            if spec.reference:
                ref = self.refs[spec.reference]
                alias = self._ref_alias(name)
                joins.append(f"LEFT JOIN {ref.table} {alias} ON {alias}.{q(ref.legacy_column)} = {col}")
                missing = f"{alias}.{q(ref.id_column)} IS NULL"
                if ref.prepared:
                    dalias = q("d_" + name)
                    joins.append(
                        f"LEFT JOIN (SELECT DISTINCT _legacy_key FROM {ref.prepared} WHERE _status = 'v') "
                        f"{dalias} ON {dalias}._legacy_key = {col}"
                    )
                    missing += f" AND {dalias}._legacy_key IS NULL"
                severity = overrides.get(("reference", name), "error")
                (errors if severity == "error" else warnings).append(
                    (f"{col} IS NOT NULL AND {missing}", f"reference:{name}")
                )
        for rule in self.entity.validations:
            spec = self.specs[rule.field]
            col = f"l2.{q(('k_' if spec.reference else '') + rule.field)}"
            cond: str | None = None
            if rule.rule == "required":
                cond = f"{col} IS NULL AND NOT {self._present(rule.field, spec)}"
            elif rule.rule == "format":
                assert rule.pattern is not None
                cond = f"{col} IS NOT NULL AND {col}::text !~ {lit(rule.pattern)}"
            elif rule.rule == "range":
                parts = []
                if rule.min is not None:
                    parts.append(f"{col} < {_num(rule.min)}")
                if rule.max is not None:
                    parts.append(f"{col} > {_num(rule.max)}")
                cond = " OR ".join(parts)
            if cond:
                (errors if rule.severity == "error" else warnings).append((cond, rule.name))
        return joins, errors, warnings

    def prepare_sql(self, into: str | None = None, *, rows: bool = False) -> str:
        """INSERT the prepared rows of raw rows in ($1, $2] into the clean table (or its partition `into`);
        with `rows`, only those whose `_row_no` is in the bigint[] $3."""
        l1_cols = ["r._row_no"]
        for name, spec in self.specs.items():
            l1_cols += self._layer1(name, spec)
        l2_cols = ["l1._row_no"] + [self._layer2(n, s) for n, s in self.specs.items()]
        digits = [c for n, s in self.specs.items() for c in self._digit_columns(n, s, f"l1a.{q('t_' + n)}")]
        joins, errors, warnings = self._checks()
        values = [f"l2.{q(LEGACY)}"]
        for name, spec in self.entity.fields.items():
            if spec.reference:
                ref = self.refs[spec.reference]
                values.append(f"{self._ref_alias(name)}.{q(ref.id_column)}")
            else:
                values.append(f"l2.{q(name)}")
        where = "r._row_no > $1 AND r._row_no <= $2" + (" AND r._row_no = ANY($3::bigint[])" if rows else "")
        if self.entity.source.where:
            where += f" AND ({self.entity.source.where})"
        e_arr, w_arr = _reasons(errors), _reasons(warnings)
        cols = ["_row_no", "_legacy_key", *self.entity.fields, "_errors", "_warnings", "_status"]
        return (
            f"INSERT INTO {into or self.clean} ({', '.join(q(c) for c in cols)}) "
            f"SELECT x._row_no, x.v0, {', '.join(f'x.v{i}' for i in range(1, len(values)))}, x.e, x.w, "
            f"CASE WHEN cardinality(x.e) > 0 THEN 'r' ELSE 'v' END FROM ("
            f"SELECT l2._row_no, {', '.join(f'{v} AS v{i}' for i, v in enumerate(values))}, "
            f"{e_arr} AS e, {w_arr} AS w FROM ("
            f"SELECT {', '.join(l2_cols)} FROM ("
            f"SELECT {', '.join(['l1a.*', *digits])} FROM ("
            f"SELECT {', '.join(l1_cols)} FROM {self.raw} r WHERE {where} OFFSET 0"
            f") l1a OFFSET 0) l1 OFFSET 0) l2 {' '.join(joins)}) x"
        )

    # ---- set-wide rules ----------------------------------------------------------------------------

    def duplicate_key_sql(self) -> str:
        """Rows sharing a legacy key: merged into the survivor (dedupe) or rejected as duplicates."""
        order = "c._row_no"
        dedupe = self.entity.dedupe
        if dedupe:
            direction = "ASC" if dedupe.keep == "earliest" else "DESC"
            # without `order_by`, earliest and latest are by position in the source
            by = f"c.{q(dedupe.order_by)} {direction} NULLS LAST, c._row_no" if dedupe.order_by else None
            order = by or f"c._row_no {direction}"
        action = "_status = 'm'" if dedupe else "_status = 'r', _errors = c._errors || 'duplicate:legacy_key'::text"
        return (
            f"WITH dup AS (SELECT _legacy_key FROM {self.clean} WHERE _status = 'v' "
            f"GROUP BY _legacy_key HAVING count(*) > 1), ranked AS ("
            f"SELECT c._row_no, row_number() OVER (PARTITION BY c._legacy_key ORDER BY {order}) AS rn "
            f"FROM {self.clean} c JOIN dup USING (_legacy_key) WHERE c._status = 'v') "
            f"UPDATE {self.clean} c SET {action} FROM ranked "
            f"WHERE c._row_no = ranked._row_no AND ranked.rn > 1"
        )

    def unique_rule_sql(self) -> list[str]:
        statements = []
        for rule in self.entity.validations:
            if rule.rule != "unique" or rule.field == LEGACY:
                continue
            col = q(rule.field)
            if rule.severity == "error":
                action = f"_status = 'r', _errors = c._errors || '{rule.name}'::text"
            else:
                action = f"_warnings = c._warnings || '{rule.name}'::text"
            statements.append(
                f"WITH ranked AS (SELECT _row_no, row_number() OVER (PARTITION BY {col} ORDER BY _row_no) AS rn "
                f"FROM {self.clean} WHERE _status = 'v' AND {col} IS NOT NULL AND {col} IN ("
                f"SELECT {col} FROM {self.clean} WHERE _status = 'v' AND {col} IS NOT NULL "
                f"GROUP BY {col} HAVING count(*) > 1)) "
                f"UPDATE {self.clean} c SET {action} FROM ranked WHERE c._row_no = ranked._row_no AND ranked.rn > 1"
            )
            statements.append(
                f"UPDATE {self.clean} c SET {action} FROM {self.target} t "
                f"WHERE c._status = 'v' AND t.{col} = c.{col} "
                f"AND t.{q(self.legacy_column)} IS DISTINCT FROM c._legacy_key"
            )
        return statements

    # ---- loading ---------------------------------------------------------------------------------------

    def upsert_sql(self) -> str:
        """Move the valid prepared rows with _row_no in ($1, $2] into the target, idempotently."""
        fields = list(self.entity.fields)
        target_cols = ", ".join(q(c) for c in [self.legacy_column, *fields])
        select_cols = ", ".join(["_legacy_key", *(q(c) for c in fields)])
        if self.entity.on_conflict == "nothing":
            conflict = "DO NOTHING"
        else:
            sets = ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in fields)
            old = ", ".join(f"t.{q(c)}" for c in fields)
            new = ", ".join(f"EXCLUDED.{q(c)}" for c in fields)
            # Unchanged rows are not rewritten: a resumed or repeated run leaves them alone.
            conflict = f"DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})"
        return (
            f"INSERT INTO {self.target} AS t ({target_cols}) SELECT {select_cols} FROM {self.clean} "
            f"WHERE _row_no > $1 AND _row_no <= $2 AND _status = 'v' "
            f"ON CONFLICT ({q(self.legacy_column)}) {conflict}"
        )

    def insert_sql(self) -> str:
        """Plain INSERT of the valid prepared rows in ($1, $2]: what the upsert does when none of them is in
        the target yet (a first run or a resumed batch), without the cost of speculative insertion."""
        fields = list(self.entity.fields)
        target_cols = ", ".join(q(c) for c in [self.legacy_column, *fields])
        select_cols = ", ".join(["_legacy_key", *(q(c) for c in fields)])
        return (
            f"INSERT INTO {self.target} ({target_cols}) SELECT {select_cols} FROM {self.clean} "
            f"WHERE _row_no > $1 AND _row_no <= $2 AND _status = 'v'"
        )

    def reject_log_sql(self, rejects_table: str) -> str:
        """Copy the rejected rows of ($1, $2] with reasons and their original source row into the log, and
        count the batch's rows by outcome, in one pass over its prepared rows. The original rows are
        looked up by `_row_no` (a btree on the raw table), so only the few rejected raw rows are read."""
        return (
            f"WITH c AS MATERIALIZED (SELECT _row_no, _status, _errors, _warnings FROM {self.clean} "
            f"WHERE _row_no > $1 AND _row_no <= $2), "
            f"logged AS (INSERT INTO {rejects_table} (job_id, entity, row_no, stage, reasons, original) "
            f"SELECT $3::uuid, $4, c._row_no, CASE WHEN c._errors[1] LIKE 'insert:%' THEN 'insert' "
            f"ELSE 'validation' END, c._errors, to_jsonb(r) - '_row_no' "
            f"FROM c JOIN {self.raw} r ON r._row_no = c._row_no WHERE c._status = 'r' "
            f"ON CONFLICT (job_id, entity, row_no) DO NOTHING) "
            f"SELECT count(*) FILTER (WHERE _status = 'v') AS migrated, "
            f"count(*) FILTER (WHERE _status = 'r') AS rejected, "
            f"count(*) FILTER (WHERE _status = 'm') AS merged, "
            f"count(*) FILTER (WHERE cardinality(_warnings) > 0 AND _status = 'v') AS warned FROM c"
        )

    # ---- verification -----------------------------------------------------------------------------

    def spot_check_sql(self, sample: int, sample_pct: float | None = None) -> str:
        """Re-derive `sample` random migrated rows from the staged source and compare with the target."""
        diffs = []
        # With on_conflict=nothing an existing row legitimately keeps its own values.
        for name in self.entity.fields if self.entity.on_conflict == "update" else []:
            diffs.append(f"CASE WHEN t.{q(name)} IS DISTINCT FROM c.{q(name)} THEN '{name}' END")
        diff_arr = f"array_remove(ARRAY[{', '.join(diffs)}]::text[], NULL)" if diffs else "'{}'::text[]"
        # Sampling blocks (not sorting every row by random()) keeps this cheap on millions of rows.
        sampled = f"{self.clean} TABLESAMPLE SYSTEM ({min(100.0, sample_pct):.6f})" if sample_pct else self.clean
        return (
            f"SELECT c._row_no, c._legacy_key, t.{q(self.legacy_column)} IS NULL AS missing, {diff_arr} AS diffs "
            f"FROM (SELECT * FROM {sampled} WHERE _status = 'v' ORDER BY random() LIMIT {int(sample)}) c "
            f"LEFT JOIN {self.target} t ON t.{q(self.legacy_column)} = c._legacy_key"
        )
