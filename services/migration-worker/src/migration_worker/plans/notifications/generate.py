"""Realistic, dirty legacy notification logs at any scale.

Faker is slow per call, so values are drawn from pools built once; millions of rows take seconds.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from faker import Faker

HEADER = [
    "notification_id", "school_code", "recipient_name", "recipient_phone", "recipient_email",
    "channel", "message", "status", "sent_at", "cost", "currency",
]  # fmt: skip


def generate(folder: Path, rows: int, seed: int = 7, dirty: float = 0.004) -> dict[str, int]:
    """Write notifications.csv into `folder`; returns the number of rows written per file."""
    rnd = random.Random(seed)
    fake = Faker("en_GB")
    Faker.seed(seed)
    names = [fake.name() for _ in range(500)]
    emails = [fake.email() for _ in range(500)]
    messages = [fake.sentence(nb_words=12) for _ in range(200)]
    schools = [f"ZW{n:04d}" for n in range(300)]
    channels = ["SMS", "sms", "Email", "e-mail", "WhatsApp", "wa", "text"]
    statuses = ["delivered", "Delivered", "sent", "FAILED", "queued", "bounced"]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "notifications.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(rows):
            phone = zimbabwe_phone(rnd)
            y, mo, d = 2015 + i % 9, 1 + i % 12, 1 + i % 28
            h, mi, s = i % 24, i % 60, (i * 7) % 60
            style = i % 3
            sent = (
                f"{y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}"
                if style == 0
                else f"{d:02d}/{mo:02d}/{y} {h:02d}:{mi:02d}"
                if style == 1
                else f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
            )
            row = [
                f"n-{i + 1:09d}",
                rnd.choice(schools).lower() if i % 5 == 0 else rnd.choice(schools),
                "  " + rnd.choice(names) + " " if i % 7 == 0 else rnd.choice(names),
                phone,
                rnd.choice(emails).upper() if i % 11 == 0 else rnd.choice(emails),
                rnd.choice(channels),
                rnd.choice(messages),
                rnd.choice(statuses),
                sent,
                f"{rnd.randrange(1, 500) / 100:.2f}" if i % 4 else f"${rnd.randrange(1, 500) / 100:.2f}",
                "usd" if i % 13 == 0 else "USD",
            ]
            if rnd.random() < dirty:
                _dirty(rnd, row)
            out.writerow(row)
    return {"notifications.csv": rows}


def zimbabwe_phone(rnd: random.Random) -> str:
    """A mobile number in one of the forms legacy systems hold them in."""
    prefix, n = rnd.choice(("71", "73", "77", "78")), rnd.randrange(10**7)
    if prefix == "73":
        n = max(n, 10**6)  # Telecel numbers are 731-739
    return rnd.choice(
        (
            f"0{prefix}{n:07d}",
            f"+263 {prefix} {n // 10**4:03d} {n % 10**4:04d}",
            f"263{prefix}{n:07d}",
            f"00263{prefix}{n:07d}",
            f"0{prefix}-{n // 10**4:03d}-{n % 10**4:04d}",
            f"{prefix}{n:07d}",
        )
    )


def _dirty(rnd: random.Random, row: list[str]) -> None:
    match rnd.randrange(6):
        case 0:
            row[8] = "31/02/2020 10:00"  # impossible date
        case 1:
            row[5] = "pigeon"  # unmapped channel
        case 2:
            row[9] = "-3.00"  # negative cost
        case 3:
            row[3] = "12345"  # not a phone number (warning only)
        case 4:
            row[4] = "not-an-email"  # warning only
        case _:
            row[8] = ""  # missing timestamp
