"""Dirty bookings exports: the same customer typed many ways, broken e-mails, dates and amounts."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from faker import Faker

from migration_worker.plans.notifications.generate import zimbabwe_phone

HEADER = [
    "booking_ref", "customer_name", "customer_email", "customer_phone", "service",
    "booked_at", "amount", "currency", "status", "notes",
]  # fmt: skip
SERVICES = ["Data migration", "Onboarding  workshop", "Timetable setup", "Fees module training", "Go-live support"]


def generate(folder: Path, rows: int, seed: int = 11, dirty: float = 0.02) -> dict[str, int]:
    rnd = random.Random(seed)
    fake = Faker("en_GB")
    Faker.seed(seed)
    customers = [(fake.name(), fake.unique.email(), zimbabwe_phone(rnd)) for _ in range(max(1, rows // 4))]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "bookings.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(rows):
            name, email, phone = rnd.choice(customers)
            # the same person, typed differently at different bookings
            email = rnd.choice([email, email.upper(), f" {email} ", email.capitalize()])
            y, mo, d, h = 2019 + i % 5, 1 + i % 12, 1 + i % 28, 8 + i % 10
            booked = f"{y}-{mo:02d}-{d:02d} {h:02d}:30" if i % 2 else f"{d:02d}/{mo:02d}/{y} {h:02d}:30"
            row = [
                f"bk-{i + 1:07d}",
                name.upper() if i % 9 == 0 else name,
                email,
                phone,
                rnd.choice(SERVICES),
                booked,
                f"{rnd.randrange(500, 250000) / 100:,.2f}",
                "USD",
                rnd.choice(["Paid", "paid", "COMPLETED", "pending", "unpaid", "cancelled", "Canceled"]),
                fake.sentence(nb_words=5) if i % 10 == 0 else "",
            ]
            if rnd.random() < dirty:
                _dirty(rnd, row)
            out.writerow(row)
    return {"bookings.csv": rows}


def _dirty(rnd: random.Random, row: list[str]) -> None:
    match rnd.randrange(6):
        case 0:
            row[2] = "no-email-given"  # the user is rejected, so are this booking's links
        case 1:
            row[5] = "30/02/2021 10:30"  # impossible date
        case 2:
            row[6] = "-45.00"  # negative amount
        case 3:
            row[0] = "bk-0000001"  # duplicate booking reference
        case 4:
            row[8] = "refunded?"  # unknown status
        case _:
            row[3] = "n/a"  # unusable phone: a warning, the row still loads
