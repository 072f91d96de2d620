"""Date formats (strftime-like, fixed width) compiled to a strict POSIX regex plus substring positions.

PostgreSQL's to_date/make_date raise on impossible dates, and one bad legacy row must never abort a
set-based statement, so parsing is done with a regex guard and arithmetic day-of-month checks instead.
"""

from __future__ import annotations

from dataclasses import dataclass

TOKENS: dict[str, tuple[str, int, str]] = {
    # token: (component, width, regex)
    "%Y": ("year", 4, r"\d{4}"),
    "%m": ("month", 2, r"(0[1-9]|1[0-2])"),
    "%d": ("day", 2, r"(0[1-9]|[12]\d|3[01])"),
    "%H": ("hour", 2, r"([01]\d|2[0-3])"),
    "%M": ("minute", 2, r"[0-5]\d"),
    "%S": ("second", 2, r"[0-5]\d"),
}
POSIX_SPECIAL = set(".^$*+?()[]{}|\\")


class DateFormatError(ValueError):
    pass


@dataclass(frozen=True)
class CompiledFormat:
    fmt: str
    regex: str
    positions: dict[str, tuple[int, int]]  # component -> (1-based start, width)
    shape: str  # the format with every digit position as '9': a cheap guard via translate()

    @property
    def has_time(self) -> bool:
        return "hour" in self.positions


def compile_format(fmt: str) -> CompiledFormat:
    regex = ["^"]
    shape: list[str] = []
    positions: dict[str, tuple[int, int]] = {}
    offset, i = 1, 0
    while i < len(fmt):
        token = fmt[i : i + 2]
        if token in TOKENS:
            component, width, pattern = TOKENS[token]
            if component in positions:
                raise DateFormatError(f"date format {fmt!r} repeats {token}")
            positions[component] = (offset, width)
            regex.append(pattern)
            shape.append("9" * width)
            offset += width
            i += 2
        elif fmt[i] == "%":
            raise DateFormatError(f"date format {fmt!r}: unsupported directive {token!r} (use %Y %m %d %H %M %S)")
        else:
            if fmt[i].isdigit():
                raise DateFormatError(f"date format {fmt!r}: literal digits are not supported")
            regex.append("\\" + fmt[i] if fmt[i] in POSIX_SPECIAL else fmt[i])
            shape.append(fmt[i])
            offset += 1
            i += 1
    regex.append("$")
    missing = {"year", "month", "day"} - positions.keys()
    if missing:
        raise DateFormatError(f"date format {fmt!r} lacks {', '.join(sorted(missing))}")
    return CompiledFormat(fmt=fmt, regex="".join(regex), positions=positions, shape="".join(shape))


DEFAULT_DATE_FORMATS = ["%Y-%m-%d"]
DEFAULT_TIMESTAMP_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
