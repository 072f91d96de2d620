"""Key rotation re-encrypts stored PII under the new key in batches; search by keyed hash keeps working."""

from uuid import uuid4

import pytest
from cryptography.fernet import Fernet
from notifications.adapters.crypto import PiiVault
from notifications.adapters.tables import RecipientRow
from notifications.service_layer.key_rotation import rotate
from notifications.settings import DEV_PII_HASH_KEY
from pydantic import SecretStr
from servicekit.db import Database
from sqlalchemy import text

pytestmark = pytest.mark.integration

OLD, NEW = SecretStr(Fernet.generate_key().decode()), SecretStr(Fernet.generate_key().decode())
HASH = SecretStr(DEV_PII_HASH_KEY)


async def test_rotation_re_encrypts_every_row_and_keeps_lookups(notifications_db: str) -> None:
    db = Database(notifications_db)
    old = PiiVault([OLD], HASH)
    phones = [f"+26377{5000000 + i}" for i in range(7)]
    try:
        async with db.transaction() as session:
            for phone in phones:
                session.add(
                    RecipientRow(
                        school_id=uuid4(),
                        name="x",
                        phone_enc=old.encrypt(phone),
                        phone_hash=old.blind_index(phone),
                        email_enc=None,
                    )
                )
        counts = await rotate(db, PiiVault([NEW, OLD], HASH), batch_size=3)
        again = await rotate(db, PiiVault([NEW, OLD], HASH), batch_size=3)

        new_only = PiiVault([NEW], HASH)
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT phone_enc, phone_hash FROM recipients"))).all()
        assert counts["recipients"] == 7
        assert again["recipients"] == 0
        assert sorted(new_only.decrypt(r.phone_enc) for r in rows) == sorted(phones)
        assert {r.phone_hash for r in rows} == {new_only.blind_index(p) for p in phones}
    finally:
        await db.dispose()
