"""A dirty legacy school information system export: one CSV per table, with the usual defects."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from faker import Faker

from migration_worker.plans.notifications.generate import zimbabwe_phone


def _date(rnd: random.Random, year: int) -> str:
    m, d = rnd.randint(1, 12), rnd.randint(1, 28)
    return rnd.choice([f"{year}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{year}"])


def generate(folder: Path, rows: int, seed: int = 5, dirty: float = 0.02) -> dict[str, int]:
    """`rows` is the number of students; the other tables scale with it."""
    rnd = random.Random(seed)
    fake = Faker("en_GB")
    Faker.seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_staff, n_classes = max(3, rows // 25), max(2, rows // 30)
    counts: dict[str, int] = {}

    def write(name: str, header: list[str], body: list[list[str]]) -> None:
        with (folder / name).open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(header)
            out.writerows(body)
        counts[name] = len(body)

    def dirty_row(row: list[str], column: int, bad: str) -> list[str]:
        if rnd.random() < dirty:
            row[column] = bad
        return row

    staff = [
        dirty_row(
            [f"st{i:04d}", fake.first_name(), fake.last_name(), fake.email(), zimbabwe_phone(rnd),
             rnd.choice(["Teacher", "class teacher", "Bursar", "HEAD", "clerk", "gardener"]),
             _date(rnd, rnd.randint(2000, 2023))],
            rnd.choice([3, 6, 2]), rnd.choice(["not-an-email", "31/04/2019", ""]),
        )
        for i in range(n_staff)
    ]  # fmt: skip
    write("staff.csv", ["staff_no", "first_name", "last_name", "email", "phone", "role", "hired_on"], staff)
    classes = [
        dirty_row(
            [f"c{i:03d}", f"Form {1 + i % 6}{'ABCD'[i % 4]}", str(1 + i % 6), "2024",
             f"ST{rnd.randrange(n_staff):04d}"],
            rnd.choice([2, 4]), rnd.choice(["14", "ST9999", "x"]),
        )
        for i in range(n_classes)
    ]  # fmt: skip
    write("classes.csv", ["class_code", "class_name", "grade", "year", "teacher_staff_no"], classes)
    students = [
        dirty_row(
            [f"S{i:06d}", fake.first_name(), fake.last_name(), _date(rnd, rnd.randint(2006, 2018)),
             rnd.choice(["M", "F", "boy", "girl", "Male", "female", ""]), str(1 + i % 6), _date(rnd, 2024)],
            rnd.choice([3, 2, 5]), rnd.choice(["30/02/2012", "", "not a date"]),
        )
        for i in range(rows)
    ]  # fmt: skip
    write("students.csv", ["student_no", "first_name", "last_name", "dob", "gender", "grade", "admitted"], students)
    guardians = [
        dirty_row(
            [f"g{i:06d}", f"s{i % max(rows, 1):06d}", fake.name(),
             rnd.choice(["Mother", "father", "Mum", "aunt", "Guardian"]), zimbabwe_phone(rnd), fake.email()],
            rnd.choice([1, 4]), rnd.choice(["S999999", "12"]),
        )
        for i in range(rows)
    ]  # fmt: skip
    write("guardians.csv", ["guardian_no", "student_no", "name", "relationship", "phone", "email"], guardians)
    enrollments = [
        dirty_row([f"S{i:06d}", f"C{rnd.randrange(n_classes):03d}", _date(rnd, 2024)], 1, "C999") for i in range(rows)
    ]
    write("enrollments.csv", ["student_no", "class_code", "enrolled_on"], enrollments)
    invoices = [
        dirty_row(
            [f"inv-{i:06d}", f"S{i % max(rows, 1):06d}", rnd.choice(["t1", "T2", "t3"]),
             f"{rnd.randrange(5000, 60000) / 100:.2f}", rnd.choice(["USD", "usd", "ZWL", ""]), _date(rnd, 2024),
             _date(rnd, 2024)],
            rnd.choice([3, 4, 1]), rnd.choice(["-10.00", "EUR", "S999999"]),
        )
        for i in range(rows)
    ]  # fmt: skip
    write(
        "fee_invoices.csv",
        ["invoice_no", "student_no", "term", "amount", "currency", "issued_on", "due_on"],
        invoices,
    )
    payments = [
        dirty_row(
            [f"R{i:07d}", f"INV-{i % max(rows, 1):06d}", f"{rnd.randrange(1000, 30000) / 100:.2f}", "USD",
             _date(rnd, 2024), rnd.choice(["Cash", "EcoCash", "eco cash", "bank", "swipe"])],
            rnd.choice([4, 2]), rnd.choice(["1999-12-31", "0.00"]),
        )
        for i in range(rows)
    ]  # fmt: skip
    write("fee_payments.csv", ["receipt_no", "invoice_no", "amount", "currency", "paid_on", "method"], payments)
    return counts
