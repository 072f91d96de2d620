"""Prepare a CSV entity with Polars: the transforms and row rules of `domain/sqlgen.py`, vectorised.

PostgreSQL's expression interpreter spends ~15 µs per row on the benchmark plan's transforms and rules;
the same work in Polars' native kernels costs a fraction of that, so PostgreSQL is left with one COPY of
already-clean rows. The SQL stays the definition: this module only takes the plans it can express
exactly (`unsupported` says why not), and `test_vector_prepare.py` holds both to identical prepared rows.

Where the two could differ it does not guess. A row with any non-ASCII character in a column the entity
reads (case mapping and regex classes follow the database's locale there), a quote character inside a
field (COPY and Polars read a quote that does not open its field differently), a title-cased value with a
letter right after a digit (`initcap` and Polars disagree on that word boundary), or an amount too long
for exact 64-bit arithmetic is left out and returned; the caller prepares those few rows with the SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import polars as pl

from migration_worker.adapters.sources import CsvFolderSource, Source
from migration_worker.domain.dates import CompiledFormat
from migration_worker.domain.plan import TERMINAL_TRANSFORMS, Default, FieldSpec, MapValues, MoneyMinor, PhoneE164
from migration_worker.domain.sqlgen import LEGACY, EntitySql, bare

BLOCK_BYTES = 8 << 20  # CSV bytes per Polars batch: bounds memory whatever the file's size
SUPPORTED = {"trim", "lower", "upper", "title", "collapse_spaces", "map", "default", *TERMINAL_TRANSFORMS}
INTEGER_TYPES = {"integer": 9, "bigint": 18}  # digits the safe cast admits, as in sqlgen._safe_cast
MONEY_MAX_DIGITS = 14  # 10^14 * 10^4 still fits 64 bits; longer amounts are left to the SQL
PG_SPACE = r"[\t\n\v\f\r ]"  # PostgreSQL's \s on ASCII


def unsupported(sql: EntitySql, source: Source) -> str | None:
    """Why this entity must be prepared by the SQL, or None when this module computes the same rows."""
    entity = sql.entity
    if not isinstance(source, CsvFolderSource) or source.typed:
        return "not a CSV source"
    if source.encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return f"encoding {source.encoding}"
    if entity.source.file is None or entity.source.where or entity.source.sql:
        return "source is filtered or derived"
    for name, spec in sql.specs.items():
        if spec.expr is not None or spec.reference:
            return f"field {name} is an expression or a reference"
        for t in spec.transforms:
            if t.kind not in SUPPORTED:
                return f"field {name}: transform {t.kind}"
        literals = [spec.value] + [t.value for t in spec.transforms if isinstance(t, Default)]
        for t in spec.transforms:
            if isinstance(t, MapValues):
                literals += [*t.values, *t.values.values(), t.default]
        if any(v is not None and not v.isascii() for v in literals):
            return f"field {name}: a non-ASCII literal"
    if sql.entity.legacy_key.output_type != "text":
        return "a typed legacy key (the SQL stores its canonical text)"
    for rule in entity.validations:
        spec = sql.specs[rule.field]
        if rule.rule == "format" and spec.output_type != "text":
            return f"rule {rule.name} on a {spec.output_type} value"
        if rule.rule == "range" and spec.output_type not in INTEGER_TYPES:
            return f"rule {rule.name} on a {spec.output_type} value"
        if rule.rule == "format" and not _rust_regex_compiles(rule.pattern or ""):
            return f"rule {rule.name}: pattern outside the common regex dialect"
    return None


def _rust_regex_compiles(pattern: str) -> bool:
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.ComputeError:
        return False
    return True


# ---- expressions ---------------------------------------------------------------------------------------


def _nullif_empty(e: pl.Expr) -> pl.Expr:
    return pl.when(e.str.len_bytes() > 0).then(e)


def _apply(e: pl.Expr, kind: str, t: object) -> pl.Expr:
    match kind:
        case "trim":
            return _nullif_empty(e.str.strip_chars(" "))
        case "lower":
            return e.str.to_lowercase()
        case "upper":
            return e.str.to_uppercase()
        case "title":
            return e.str.to_titlecase()
        case "collapse_spaces":
            return e.str.replace_all(PG_SPACE + "+", " ")
        case "map":
            assert isinstance(t, MapValues)
            return e.replace_strict(t.values, default=t.default, return_dtype=pl.String)
        case "default":
            assert isinstance(t, Default)
            return pl.coalesce(e, pl.lit(t.value))
    raise AssertionError(f"unhandled transform {kind}")


def _origin(spec: FieldSpec) -> pl.Expr:
    if spec.value is not None:
        return pl.lit(spec.value, dtype=pl.String)
    if spec.source is not None:
        return _nullif_empty(pl.col(spec.source))
    return pl.lit(None, dtype=pl.String)


def _text_pipeline(spec: FieldSpec) -> pl.Expr:
    e = _origin(spec)
    terminal = spec.transforms[-1] if spec.transforms else None
    for t in spec.transforms:
        if t is terminal and t.kind in TERMINAL_TRANSFORMS:
            break
        e = _apply(e, t.kind, t)
    return e


def _parse_dates(v: pl.Expr, formats: list[CompiledFormat], with_time: bool) -> pl.Expr:
    """The first format whose shape the value has and whose components make a real date (and time), as
    ISO text: COPY reads it in the session's time zone, the plan's source zone, as `AT TIME ZONE` does."""
    options = []
    for f in formats:
        shaped = v.str.contains(_shape_regex(f))
        text = {c: pl.when(shaped).then(v.str.slice(start - 1, width)) for c, (start, width) in f.positions.items()}
        num = {c: t.cast(pl.Int32, strict=False) for c, t in text.items()}
        y, m, d = num["year"], num["month"], num["day"]
        leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
        days = (
            pl.when(m.is_in([4, 6, 9, 11]))
            .then(30)
            .when(m == 2)
            .then(pl.when(leap).then(29).otherwise(28))
            .otherwise(31)
        )
        ok = (y >= 1) & m.is_between(1, 12) & (d >= 1) & (d <= days)
        parts = [text["year"], pl.lit("-"), text["month"], pl.lit("-"), text["day"]]
        if with_time:
            for c, limit in (("hour", 23), ("minute", 59), ("second", 59)):
                if c in num:
                    ok = ok & (num[c] <= limit)
            clock = [text.get(c, pl.lit("00")) for c in ("hour", "minute", "second")]
            parts += [pl.lit(" "), clock[0], pl.lit(":"), clock[1], pl.lit(":"), clock[2]]
        options.append(pl.when(ok).then(pl.concat_str(parts)))
    return options[0] if len(options) == 1 else pl.coalesce(options)


def _shape_regex(f: CompiledFormat) -> str:
    """The format's exact shape, digits where `9` and its separators elsewhere: what sqlgen proves with
    LIKE, ltrim and a digit count."""
    return "^" + "".join("[0-9]" if ch == "9" else re.escape(ch) if ch != " " else " " for ch in f.shape) + "$"


# Zimbabwean mobiles in every form sqlgen._phone accepts: +263 / 00263 / 263 / 0 / nothing, then Econet
# 77/78, NetOne 71 or Telecel 73 (not 730) and six more digits.
ZW_MOBILE = r"^(?:\+263|00263|263|0)?(7(?:[178][0-9]|3[1-9])[0-9]{6})$"


def _phone(v: pl.Expr) -> pl.Expr:
    """`EntitySql._phone`: the same numbers out, as three regular expressions instead of its CASE."""
    national = v.str.extract(ZW_MOBILE, 1)
    return (
        pl.when(national.is_not_null())
        .then(pl.lit("+263") + national)
        .when(v.str.contains(r"^\+[1-9][0-9]{7,14}$") & ~v.str.starts_with("+263"))
        .then(v)
        .when(v.str.contains(r"^00[1-9][0-9]{7,14}$") & ~v.str.starts_with("00263"))
        .then(pl.lit("+") + v.str.slice(2))
    )


def _money(v: pl.Expr, exponent: int) -> pl.Expr:
    """round(value * 10^exponent) in exact integer arithmetic, half away from zero as numeric rounds.
    The shape is sqlgen's: at most 20 characters, digits with at most one dot, a minus only in front."""
    shaped = v.str.contains(r"^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$") & (v.str.len_bytes() <= 20)
    body = v.str.strip_prefix("-")
    dot = body.str.find(".", literal=True)
    whole = pl.when(dot.is_null()).then(body).otherwise(body.str.slice(0, dot))
    fraction = pl.when(dot.is_null()).then(pl.lit("")).otherwise(body.str.slice(dot + 1))
    kept = fraction.str.slice(0, exponent).str.pad_end(exponent, "0") if exponent else pl.lit("0")
    up = (fraction.str.slice(exponent, 1) >= "5").cast(pl.Int64)
    whole_num = pl.when(whole.str.len_bytes() > 0).then(whole).otherwise(pl.lit("0")).cast(pl.Int64, strict=False)
    minor = whole_num * (10**exponent) + kept.cast(pl.Int64, strict=False) + up
    signed = pl.when(v.str.starts_with("-")).then(-minor).otherwise(minor)
    return pl.when(shaped).then(signed.cast(pl.String))


def _safe_cast(v: pl.Expr, to: str) -> pl.Expr:
    if to in INTEGER_TYPES:
        return pl.when(v.str.contains(rf"^{PG_SPACE}*[+-]?[0-9]{{1,{INTEGER_TYPES[to]}}}{PG_SPACE}*$")).then(v)
    if to == "numeric":
        pattern = rf"^{PG_SPACE}*[+-]?([0-9]{{1,30}}(\.[0-9]{{0,20}})?|\.[0-9]{{1,20}}){PG_SPACE}*$"
        return pl.when(v.str.contains(pattern)).then(v)
    if to == "boolean":
        key = v.str.strip_chars(" ").str.to_lowercase()
        truth = dict.fromkeys(("true", "t", "yes", "y", "1"), "t") | dict.fromkeys(("false", "f", "no", "n", "0"), "f")
        return key.replace_strict(truth, default=None, return_dtype=pl.String)
    return v


def _typed(sql: EntitySql, name: str, spec: FieldSpec) -> pl.Expr:
    """Layer 2: the column's final value (as COPY text) from its text pipeline `t_<name>`."""
    v = pl.col(f"t_{name}")
    terminal = spec.transforms[-1] if spec.transforms else None
    parsed = sql.date_formats(spec)
    if parsed is not None:
        return _parse_dates(v, *parsed)
    if isinstance(terminal, MoneyMinor):
        return _money(v.str.replace_all("[$, ]", ""), terminal.exponent)
    if isinstance(terminal, PhoneE164):
        return _phone(v.str.replace_all(r"[ ().\-]", ""))
    return _safe_cast(v, spec.output_type)


def _present(name: str, spec: FieldSpec) -> pl.Expr:
    if spec.value is not None or spec.source is None:
        return pl.lit(False)
    # nullif(btrim(nullif(source, '')), '') IS NOT NULL, straight from the source column
    return pl.col(spec.source).str.strip_chars(" ").str.len_bytes().fill_null(0) > 0


def _reasons(sql: EntitySql) -> tuple[list[tuple[pl.Expr, str]], list[tuple[pl.Expr, str]]]:
    """The (condition, reason) rules in `EntitySql._checks` order, over the final columns `v_<name>`."""
    errors: list[tuple[pl.Expr, str]] = [(pl.col(f"v_{LEGACY}").is_null(), "required:legacy_key")]
    warnings: list[tuple[pl.Expr, str]] = []
    for name, spec in sql.specs.items():
        bucket = errors if spec.on_invalid == "error" else warnings
        bucket.append((pl.col(f"v_{name}").is_null() & _present(name, spec), f"invalid:{name}"))
    for rule in sql.entity.validations:
        spec, col = sql.specs[rule.field], pl.col(f"v_{rule.field}")
        if rule.rule == "required":
            cond = col.is_null() & ~_present(rule.field, spec)
        elif rule.rule == "format":
            cond = col.is_not_null() & ~col.str.contains(rule.pattern or "")
        elif rule.rule == "range":
            # the value is the cast's input text: PostgreSQL reads it past surrounding space and a '+'
            number = col.str.strip_chars(" \t\n\v\f\r").str.strip_prefix("+").cast(pl.Int64, strict=False)
            cond = pl.lit(False)
            if rule.min is not None:
                cond = cond | (number < rule.min)
            if rule.max is not None:
                cond = cond | (number > rule.max)
        else:
            continue
        (errors if rule.severity == "error" else warnings).append((cond.fill_null(False), rule.name))
    return errors, warnings


def _array(rules: list[tuple[pl.Expr, str]]) -> pl.Expr:
    """A text[] literal of the reasons that hold, in order: `{a,b}` or `{}`."""
    if not rules:
        return pl.lit("{}")
    parts = [pl.when(cond).then(pl.lit(reason + ",")).otherwise(pl.lit("")) for cond, reason in rules]
    listed = pl.concat_str(parts).str.strip_suffix(",")
    return pl.concat_str([pl.lit("{"), listed, pl.lit("}")])


def _exotic(sql: EntitySql, columns: list[str], plain: bool) -> pl.Expr:
    """Rows this module does not vouch for (see the module's docstring); the SQL prepares them. `plain`: the
    block is known to hold only ASCII and no quote character, so no value needs looking at for those."""
    used = [] if plain else [c for c in columns if any(spec.source == c for spec in sql.specs.values())]
    # a value is pure ASCII exactly when it has as many bytes as characters
    flags = [pl.col(c).str.len_bytes() != pl.col(c).str.len_chars() for c in used]
    # A quote left in a parsed value was not at the start of its field: COPY reads such a quote as opening
    # a quoted part, Polars keeps it as a character.
    flags += [pl.col(c).str.contains('"', literal=True) for c in ([] if plain else columns)]
    for name, spec in sql.specs.items():
        kinds = [t.kind for t in spec.transforms]
        if "title" in kinds:
            flags.append(pl.col(f"t_{name}").str.contains("[0-9][A-Za-z]"))
        if "money_minor" in kinds:
            flags.append(pl.col(f"t_{name}").str.count_matches("[0-9]") > MONEY_MAX_DIGITS)
    return pl.any_horizontal(flags).fill_null(False) if flags else pl.lit(False)


@dataclass(frozen=True)
class _Layers:
    """The expressions of one entity, built once per file and applied to every block."""

    text: list[pl.Expr]  # layer 1: `t_<field>`
    typed: list[pl.Expr]  # layer 2: `v_<field>`
    exotic: dict[bool, pl.Expr]  # by whether the block is plain (all ASCII, no quote character)
    reasons: list[pl.Expr]  # `_errors`, `_warnings`
    outputs: list[pl.Expr]  # the prepared table's columns, then `_exotic`

    @classmethod
    def of(cls, sql: EntitySql, columns: list[str]) -> _Layers:
        errors, warnings = _reasons(sql)
        status = pl.when(pl.col("_errors") == "{}").then(pl.lit("v")).otherwise(pl.lit("r"))
        outputs = [pl.col("_row_no"), pl.col(f"v_{LEGACY}").alias("_legacy_key")]
        outputs += [pl.col(f"v_{n}").alias(n) for n in sql.entity.fields]
        outputs += [pl.col("_errors"), pl.col("_warnings"), status.alias("_status"), pl.col("_exotic")]
        return cls(
            text=[_text_pipeline(s).alias(f"t_{n}") for n, s in sql.specs.items()],
            typed=[_typed(sql, n, s).alias(f"v_{n}") for n, s in sql.specs.items()],
            exotic={plain: _exotic(sql, columns, plain).alias("_exotic") for plain in (False, True)},
            reasons=[_array(errors).alias("_errors"), _array(warnings).alias("_warnings")],
            outputs=outputs,
        )

    def prepared(self, frame: pl.LazyFrame, *, plain: bool) -> pl.LazyFrame:
        """The prepared rows of raw CSV rows (all text, `_row_no` numbered), `_exotic` marking those left
        to the SQL. Layered like sqlgen's statement: text pipelines, typed values, then the rules."""
        frame = frame.with_columns(self.text).with_columns(*self.typed, self.exotic[plain])
        return frame.with_columns(self.reasons).select(self.outputs)


def record_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The file after its header, in blocks of whole records. A record ends at a newline outside quotes,
    i.e. after an even number of quote characters: how PostgreSQL's COPY finds line ends too (a doubled
    quote inside a quoted field toggles twice). Every block starts outside quotes."""
    with path.open("rb") as fh:
        pending, header = b"", True
        while data := fh.read(block_bytes):
            pending += data
            if header:
                cut = _first_record_end(pending)
                if cut is None:
                    continue
                pending, header = pending[cut + 1 :], False
            cut = _last_record_end(pending)
            if cut is not None:
                yield pending[: cut + 1]
                pending = pending[cut + 1 :]
        if not header and pending.strip(b"\r\n"):
            yield pending


def _first_record_end(data: bytes) -> int | None:
    at, before, parity = data.find(b"\n"), 0, 0
    while at != -1:
        parity = (parity + data.count(b'"', before, at)) % 2
        if parity == 0:
            return at
        before, at = at, data.find(b"\n", at + 1)
    return None


def _last_record_end(data: bytes) -> int | None:
    total, after, end = data.count(b'"'), 0, len(data)
    while (at := data.rfind(b"\n", 0, end)) != -1:
        after += data.count(b'"', at, end)
        if (total - after) % 2 == 0:
            return at
        end = at
    return None


@dataclass
class VectorResult:
    rows: int  # rows read from the file, exotic ones included
    exotic: list[int]  # row numbers left to the SQL


def _prepared_blocks(
    sql: EntitySql, path: Path, columns: list[str], delimiter: str, result: VectorResult
) -> Iterator[bytes]:
    """COPY text of each block's prepared rows; memory stays at a block's worth whatever the file's size."""
    layers = _Layers.of(sql, columns)
    for block in record_blocks(path):
        raw = pl.read_csv(
            block, has_header=False, new_columns=columns, separator=delimiter, infer_schema=False, quote_char='"'
        )
        frame = raw.lazy().with_row_index("_row_no", offset=result.rows + 1)
        plain = block.isascii() and b'"' not in block  # the usual block: one C-speed scan spares the per-value checks
        batch = layers.prepared(frame, plain=plain).collect()
        result.rows += batch.height
        odd = batch.filter(pl.col("_exotic"))
        if odd.height:
            result.exotic.extend(odd["_row_no"].to_list())
        yield batch.filter(~pl.col("_exotic")).drop("_exotic").write_csv(include_header=False, null_value="").encode()


async def _in_thread(iterator: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The batches computed on a thread (Polars releases the GIL) one ahead of the COPY sending them."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in iterator:
                if stop.is_set():
                    return
                asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(queue.put(exc), loop).result()

    worker = threading.Thread(target=produce, name="vector-prepare", daemon=True)
    worker.start()
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not queue.empty():
            queue.get_nowait()


async def copy_prepared(
    conn: asyncpg.Connection, sql: EntitySql, source: CsvFolderSource, columns: list[str]
) -> VectorResult:
    """COPY the entity's prepared rows into its prepared table; returns the rows read and those left out."""
    assert sql.entity.source.file is not None
    path = source.folder / sql.entity.source.file
    result = VectorResult(rows=0, exotic=[])
    schema, table = (bare(part) for part in sql.clean.split(".", 1))
    names = ["_row_no", "_legacy_key", *sql.entity.fields, "_errors", "_warnings", "_status"]
    async with conn.transaction():
        # Parsed timestamps are local times of the source's zone, read as `AT TIME ZONE` would.
        await conn.execute("SELECT set_config('TimeZone', $1, true)", sql.timezone)
        await conn.copy_to_table(
            table,
            schema_name=schema,
            source=_in_thread(_prepared_blocks(sql, path, columns, source.delimiter, result)),
            columns=names,
            format="csv",
        )
    return result
