"""Synthetic CSVs for offline demos and tests: one with the Bank Marketing schema, one of home prices, and time
series (monthly sales; weekly sales of several stores with promotions planned ahead).

The bank target depends on a few columns (call duration, previous outcome, the
euribor rate) so that a model has something real to learn; the price is a
number (a regression target) driven by size, district, age and a garden.
"""

from __future__ import annotations

import csv
import io
import math
import random

CATEGORIES: dict[str, list[str]] = {
    "job": ["admin.", "blue-collar", "technician", "services", "management", "retired", "entrepreneur",
            "self-employed", "housemaid", "unemployed", "student", "unknown"],
    "marital": ["married", "single", "divorced", "unknown"],
    "education": ["university.degree", "high.school", "basic.9y", "professional.course", "basic.4y", "basic.6y",
                  "unknown", "illiterate"],
    "default": ["no", "unknown", "yes"],
    "housing": ["yes", "no", "unknown"],
    "loan": ["no", "yes", "unknown"],
    "contact": ["cellular", "telephone"],
    "month": ["may", "jul", "aug", "jun", "nov", "apr", "oct", "sep", "mar", "dec"],
    "day_of_week": ["mon", "tue", "wed", "thu", "fri"],
    "poutcome": ["nonexistent", "failure", "success"],
}
COLUMNS = ["age", "job", "marital", "education", "default", "housing", "loan", "contact", "month", "day_of_week",
           "duration", "campaign", "pdays", "previous", "poutcome", "emp.var.rate", "cons.price.idx",
           "cons.conf.idx", "euribor3m", "nr.employed", "y"]


def rows(count: int, seed: int = 7, signal: float = 1.0) -> list[dict[str, object]]:
    """``count`` rows; ``signal`` scales how strongly the features drive the target (0 = pure noise)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    out: list[dict[str, object]] = []
    for _ in range(count):
        row: dict[str, object] = {name: rng.choice(values) for name, values in CATEGORIES.items()}
        duration = int(rng.expovariate(1 / 250))
        euribor = round(rng.uniform(0.6, 5.0), 3)
        row.update({
            "age": rng.randint(18, 90), "duration": duration, "campaign": rng.randint(1, 10),
            "pdays": 999 if row["poutcome"] == "nonexistent" else rng.randint(0, 27),
            "previous": 0 if row["poutcome"] == "nonexistent" else rng.randint(1, 6),
            "emp.var.rate": round(rng.uniform(-3.4, 1.4), 1), "cons.price.idx": round(rng.uniform(92.2, 94.8), 3),
            "cons.conf.idx": round(rng.uniform(-50.8, -26.9), 1), "euribor3m": euribor,
            "nr.employed": round(rng.uniform(4963.6, 5228.1), 1),
        })
        score = signal * (duration / 200 - 1.2 * euribor / 2 + (2.0 if row["poutcome"] == "success" else 0.0)) - 1.5
        row["y"] = "yes" if rng.random() < 1 / (1 + math.exp(-score)) else "no"
        out.append(row)
    return out


DISTRICTS = {"centre": 2.0, "harbour": 1.5, "hills": 1.2, "suburb": 1.0, "outskirts": 0.7}


def home_rows(count: int, seed: int = 11) -> list[dict[str, object]]:
    """``count`` homes with a numeric ``price`` (in thousands); the garden column is TRUE/FALSE."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    out: list[dict[str, object]] = []
    for _ in range(count):
        size = round(rng.uniform(30, 220), 1)
        district = rng.choice(list(DISTRICTS))
        built = rng.randint(1900, 2025)
        garden = rng.random() < 0.4
        price = (size * 3.1 * DISTRICTS[district] + (35 if garden else 0) - 0.4 * (2025 - built)
                 + rng.gauss(0, 25))
        out.append({"size_m2": size, "rooms": max(1, int(size / 28) + rng.randint(-1, 1)), "district": district,
                    "built": built, "garden": "TRUE" if garden else "FALSE", "price": round(max(price, 20.0), 2)})
    return out


def _month(start_year: int, index: int) -> str:
    return f"{start_year + index // 12:04d}-{index % 12 + 1:02d}-01"


def monthly_sales(months: int, seed: int = 5, start_year: int = 2015) -> list[dict[str, object]]:
    """One series: ``units`` sold per month (on the first of the month), a trend and a yearly season."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    return [{"month": _month(start_year, i),
             "units": round(200 + 1.5 * i + 40 * math.sin(2 * math.pi * i / 12) + 15 * math.cos(4 * math.pi * i / 12)
                            + rng.gauss(0, 6), 1)} for i in range(months)]


def store_weeks(stores: int, weeks: int, seed: int = 9) -> list[dict[str, object]]:
    """Several series: ``sales`` per ``store`` per week (Mondays from 2022-01-03), each store at its own level,
    with a yearly season and ``promo`` weeks (planned ahead: a feature known for future weeks too)."""
    import datetime

    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    first = datetime.date(2022, 1, 3)
    out: list[dict[str, object]] = []
    for store in range(1, stores + 1):
        level, lift = rng.uniform(80, 300), rng.uniform(0.2, 0.5)
        for week in range(weeks):
            promo = int(rng.random() < 0.15)
            season = 1 + 0.25 * math.sin(2 * math.pi * week / 52.18)
            sales = level * season * (1 + 0.002 * week) * (1 + lift * promo) * rng.lognormvariate(0, 0.05)
            out.append({"week": (first + datetime.timedelta(weeks=week)).isoformat(), "store": f"S{store:02d}",
                        "promo": promo, "sales": round(sales, 1)})
    return out


def to_csv(data: list[dict[str, object]], delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(data[0]) if data else COLUMNS, delimiter=delimiter,
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(data)
    return buffer.getvalue().encode("utf-8")


def typed(value: str) -> int | float | str:
    """A CSV cell as the JSON value a client would send: a number when it reads as one."""
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value
