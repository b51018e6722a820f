"""Call the scoring endpoint, as a client application would.

    python examples/endpoint.py --url http://127.0.0.1:7071/api/score --key KEY
    SCORING_URL=... SCORING_KEY=... python examples/endpoint.py

Prints the labels (and probabilities) for two example customers.
"""

from __future__ import annotations

import argparse
import json
import os

import requests

ROWS = [
    {"age": 41, "job": "admin.", "marital": "married", "education": "university.degree", "default": "no",
     "housing": "yes", "loan": "no", "contact": "cellular", "month": "may", "day_of_week": "mon", "duration": 640,
     "campaign": 1, "pdays": 999, "previous": 0, "poutcome": "nonexistent", "emp.var.rate": -1.8,
     "cons.price.idx": 92.893, "cons.conf.idx": -46.2, "euribor3m": 1.299, "nr.employed": 5099.1},
    {"age": 57, "job": "technician", "marital": "married", "education": "high.school", "default": "no",
     "housing": "no", "loan": "yes", "contact": "telephone", "month": "jun", "day_of_week": "thu", "duration": 90,
     "campaign": 3, "pdays": 999, "previous": 0, "poutcome": "nonexistent", "emp.var.rate": 1.4,
     "cons.price.idx": 94.465, "cons.conf.idx": -41.8, "euribor3m": 4.961, "nr.employed": 5228.1},
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("SCORING_URL", "http://127.0.0.1:7071/api/score"))
    parser.add_argument("--key", default=os.environ.get("SCORING_KEY") or os.environ.get("FUNCTIONS_KEY"),
                        help="the function key (x-functions-key)")
    args = parser.parse_args()
    headers = {"Content-Type": "application/json"}
    if args.key:
        headers["x-functions-key"] = args.key
    response = requests.post(args.url, json={"data": ROWS, "probabilities": True}, headers=headers, timeout=30)
    print(response.status_code)
    print(json.dumps(response.json(), indent=2))
    return 0 if response.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
