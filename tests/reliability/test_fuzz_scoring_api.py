"""Schemathesis against the OpenAPI document the live host serves, over every documented operation, with all of
its checks: no server error; only documented statuses, content types and response shapes; every schema-valid
request accepted and every schema-violating one refused. Two deployed models (a classifier; a regression with a
true/false and a date column) give the row schemas every kind of column. Our own checks (fuzz_checks.py): a
refusal says why, and no answer echoes the key."""

from __future__ import annotations

import datetime
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import sample_data
from tests.integration.ml_stack import Stack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
HERE = Path(__file__).parent
EXAMPLES_PER_OPERATION = 40


def homes_with_dates(count: int) -> bytes:
    rows = sample_data.home_rows(count, seed=5)
    rng = random.Random(3)
    for row in rows:
        row["listed"] = (datetime.date(2024, 1, 1) + datetime.timedelta(days=rng.randint(0, 500))).isoformat()
    return sample_data.to_csv(rows)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"MAX_SCORE_ROWS": "20", "MAX_SCORE_BYTES": "20000"}
    with running_stack(Path(tmp_path_factory.mktemp("fuzz")), **env) as stack:
        # Not "bank": the document's example run is of bank, and a 404 here spares the test a training.
        loans = stack.upload("loans/a.csv", sample_data.to_csv(sample_data.rows(300)))
        homes = stack.upload("homes/a.csv", homes_with_dates(300), {"target": "price"})
        for upload in (loans, homes):
            record = stack.wait_final(upload)
            assert record["state"] == "promoted", record
        yield stack


def test_every_documented_operation_keeps_the_documented_contract(served: Stack, tmp_path: Path):
    key = served.host.function_key
    statuses = tmp_path / "statuses"
    seed = [] if os.environ.get("FUZZ_RANDOM") == "1" else ["--seed", "11"]  # fixed cases unless FUZZ_RANDOM=1
    command = [str(Path(sys.executable).with_name("schemathesis")), "--no-color", "--config-file",
               str(HERE / "schemathesis.toml"), "run", f"{served.host.url}/api/swagger.json?code={key}",
               "--header", f"x-functions-key: {key}", "--checks", "all", "--phases", "examples,fuzzing",
               "--max-examples", str(EXAMPLES_PER_OPERATION), "--workers", "1", *seed]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "fuzz_checks.py"), "FUZZ_FUNCTION_KEY": key,
           "FUZZ_STATUS_LOG": str(statuses)}
    # In the test's own folder: schemathesis keeps its cache in the working directory.
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    operations = served.get("swagger.json")["paths"]
    assert {"/score", "/models/loans/score", "/models/homes/versions/{version}/score",
            "/pipelines/{name}/runs", "/runs/{run_id}"} <= set(operations)
    assert f"Tested: {sum(len(item) for item in operations.values())}" in done.stdout  # every one of them
    # The generated cases must exercise both sides, or this proves little.
    seen = Counter(int(line) for line in statuses.read_text().split())
    assert any(200 <= s < 300 for s in seen) and any(400 <= s < 500 for s in seen), seen
    print(f"status codes seen: {dict(sorted(seen.items()))}")
