"""Tell PostgreSQL who is asking, for this transaction only, so row-level security can filter every query."""

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CATALOGUE_STAMP = "catalogue_stamp"  # session.info key: the catalogue revision this transaction saw first

_SET = text(
    "SELECT set_config('app.role', :role, true), set_config('app.school_id', :school, true),"
    " set_config('app.user', :user, true), set_config('jit', 'off', true),"
    " (SELECT stamp FROM catalogue_revision)"
)


async def set_tenant(session: AsyncSession, *, role: str, school_id: UUID | None, user: str) -> None:
    # JIT is off too: the row-level security predicates inflate cost estimates until PostgreSQL spends more time
    # compiling a dashboard query than running it.
    # `true` = local to the transaction: a pooled connection never carries one request's identity into the next.
    # The same round trip reads the catalogue's revision stamp, which lets pricing use the process's copy.
    row = (
        await session.execute(_SET, {"role": role, "school": str(school_id) if school_id else "", "user": user})
    ).one()
    session.info[CATALOGUE_STAMP] = row[4]
