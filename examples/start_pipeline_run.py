"""Start the published training pipeline over REST and watch the run, as a client script would.

    python examples/start_pipeline_run.py --url http://127.0.0.1:7071 --key KEY --model bank --metric AUC_weighted
"""

from __future__ import annotations

import argparse
import os
import time

import requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("DEVHOST_URL", "http://127.0.0.1:7071"))
    parser.add_argument("--key", default=os.environ.get("FUNCTIONS_KEY"), help="the function key")
    parser.add_argument("--model", default="bank")
    parser.add_argument("--metric", default="AUC_weighted")
    args = parser.parse_args()
    headers = {"x-functions-key": args.key or ""}
    endpoint = f"{args.url}/api/pipelines/automl-training/runs"
    response = requests.post(endpoint, json={"ExperimentName": args.model, "metric": args.metric}, headers=headers,
                             timeout=30)
    response.raise_for_status()
    run_id = response.json().get("Id")
    print("Submitted pipeline run:", run_id)
    while True:
        run = requests.get(f"{args.url}/api/runs/{run_id}", headers=headers, timeout=30).json()
        print(run["state"], run["progress"])
        if run["state"] in ("completed", "failed", "cancelled", "superseded"):
            print("metrics:", run["result"].get("validation_metrics"))
            print("decision:", run.get("decision"))
            return 0 if run["state"] == "completed" else 1
        time.sleep(5)


if __name__ == "__main__":
    raise SystemExit(main())
