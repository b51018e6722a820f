"""An upload with more rows than the search takes, through the real local stack: searched on a sample, the
deployed model refit on every row when that fits, and the notes, the CLI and the report saying which."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cli import sample_data
from tests.integration.ml_stack import Stack, features, running_stack
from tests.integration.test_cli import cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("big"), AUTOML_SEARCH_ROWS="500") as running:
        yield running


def test_an_upload_beyond_the_search_rows_trains_on_a_sample_and_says_so(stack: Stack, tmp_path: Path):
    rows = sample_data.rows(2000, seed=8)
    data = tmp_path / "many.csv"
    data.write_bytes(sample_data.to_csv(rows))
    shown = cli(stack, "upload", str(data), "--model", "many", "--target", "y")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "searched on a sample of 500 of 2,000 rows" in shown.stdout
    deployed = next(line for line in shown.stdout.splitlines() if "judged: fit on 400 rows, scored on 100" in line)
    assert deployed.endswith(("deployed: refit on all 2,000", "deployed: the judged fit itself (a refit on every row "
                                                              "did not fit the budget or memory)"))
    [upload] = [u for u in stack.get("status", limit="100")["uploads"] if u["model_name"] == "many"]
    assert upload["state"] == "promoted"
    result = stack.get(f"runs/{upload['run_id']}")["result"]
    assert result["notes"][0].startswith("Searched on 500 of 2,000 labelled rows")
    assert result["fit_rows"]["sampled_from"] == 2000
    report = requests.get(f"{stack.host.url}/api/runs/{upload['run_id']}/report", headers=stack.headers, timeout=60)
    assert "searched on a sample of 500 of 2,000 rows" in report.text
    scored = requests.post(f"{stack.host.url}/api/models/many/score", json={"data": features(rows[:3])},
                           headers=stack.headers, timeout=60)
    assert scored.status_code == 200 and len(scored.json()["result"]) == 3
