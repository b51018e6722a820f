"""A self-contained HTML report per run, written beside the model: what the studio would show, locally.

Leaderboard, ROC and precision-recall curves, confusion matrix at the chosen
threshold, calibration (for regression: predicted against actual, and the
residuals), feature importance, the dataset's guardrails and the
champion/challenger decision with both numbers. Charts are inline SVG drawn
here: the file opens anywhere, offline, with nothing to load.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared import report_html as page
from shared.local import artifacts
from shared.model_contract import ModelSignature, columns_from_frame
from shared.ports import DatasetRegistry, ModelRegistry, RunInfo, RunReports

REPORT_FILE = "report.html"


class LocalRunReports(RunReports):
    def __init__(self, state_dir: Path, datasets: DatasetRegistry, registry: ModelRegistry) -> None:
        self.state_dir = state_dir
        self.datasets = datasets
        self.registry = registry

    def write(self, run: RunInfo, decision: dict[str, Any]) -> None:
        folder = Path(run.result["artifact_dir"])
        dataset = self.datasets.get(run.dataset_name, run.dataset_version)
        model = self.registry.find_by_run(run.model_name, run.run_id)
        page = render(run, folder, decision, list(dataset.guardrails) if dataset else [],
                      model.version if model else "?")
        staged = folder / f".{REPORT_FILE}.tmp"
        staged.write_text(page)
        staged.replace(folder / REPORT_FILE)

    def html(self, run_id: str) -> str | None:
        path = self.state_dir / "runs" / run_id / REPORT_FILE
        return path.read_text() if path.exists() else None


def render(run: RunInfo, folder: Path, decision: dict[str, Any], guardrails: list[dict[str, Any]],
           version: str) -> str:
    meta = json.loads((folder / "model_meta.json").read_text())
    frame = pd.read_csv(folder / "validation.csv", keep_default_na=True)
    signature = ModelSignature.from_meta(meta)
    judged = folder / artifacts.JUDGED_OUTPUTS  # what training recorded of the judged fit on these rows
    if judged.exists():
        outputs = np.load(judged)
    else:  # a run from before they were recorded: the judged fit predicts them again
        model = artifacts.load_judged(folder)  # the deployed refit has seen these rows
        outputs = model.predict(columns_from_frame(frame, model.signature))
    trials = json.loads((folder / "trials.json").read_text()) if (folder / "trials.json").exists() else []
    loss = meta.get("search", {}).get("loss") or ("rmse" if signature.regression else "log loss")
    common = (page.figure("Feature importance", page.bars(meta.get("feature_importance", {}), 12),
                          "share of the model's use"),
              page.figure("Leaderboard", page.leaderboard(trials),
                          f"{len(trials)} trials; best cross-validated {loss}"))
    if meta.get("time_series"):
        return _forecast_page(run, folder, meta, decision, guardrails, version, frame, outputs, trials)
    classes = [] if signature.regression else list(signature.classes)
    target = frame[meta["target"]]
    y = pd.to_numeric(target, errors="coerce").to_numpy(dtype=float) if signature.regression else \
        target.astype(str).to_numpy()
    labels = None if signature.regression else np.asarray(signature.results(outputs), dtype=str)
    charts = page.evaluation(y, outputs, classes, labels, signature.threshold or 0.5, "validation rows",
                             meta["validation_metrics"])
    if signature.regression:
        rows = [page.row(*charts, *common)]
        described = f"target {meta['target']!r}, regression"
    else:
        rows = [page.row(*charts[:3]), page.row(charts[3], *common)]
        described = f"positive class {signature.positive_class!r}"
    sections = [_header(run, meta, version, len(frame), described), page.decision(decision), *rows,
                page.guardrails(guardrails)]
    return page.document(f"Run {run.run_id}: {run.model_name}", sections)


def _forecast_page(run: RunInfo, folder: Path, meta: dict[str, Any], decision: dict[str, Any],
                   guardrails: list[dict[str, Any]], version: str, frame: pd.DataFrame, outputs: np.ndarray,
                   trials: list[dict[str, Any]]) -> str:
    """A forecaster's run: each shown series' actual values against the forecast of its held-out window, the
    candidates ranked by their backtest, and the forecasts against the actual values of every window."""
    settings = meta["time_series"]
    path = folder / artifacts.FORECAST_WINDOWS
    windows = json.loads(path.read_text()) if path.exists() else []
    horizon = settings["horizon"]
    cards = [page.figure(f"{w['series']}: actual and forecast", page.forecast_chart(w),
                         f"grey: before; dark: what happened; blue: forecast of the last {horizon} period(s)")
             for w in windows]
    y = pd.to_numeric(frame[meta["target"]], errors="coerce").to_numpy(dtype=float)
    overall = page.evaluation(y, outputs, [], None, 0.5, "validation windows", meta["validation_metrics"])[0]
    naive = next((t["cv_loss"] for t in trials if t["learner"] == "seasonal-naive" and t["cv_loss"] is not None), None)
    board = page.figure("Backtest", page.leaderboard(trials, limit=10),
                        f"the 10 best of {len(trials)} candidates: mean absolute error over rolling origins, scaled "
                        "per series" + (f"; seasonal naive {naive:.4f}" if naive is not None else ""))
    described = (f"target {meta['target']!r}, forecasting {horizon} {settings['frequency']} period(s)"
                 + (f" of each series by {', '.join(settings['series'])}" if settings["series"] else ""))
    sections = [_header(run, meta, version, len(frame), described), page.decision(decision),
                page.row(board, overall), *(page.row(*cards[i: i + 3]) for i in range(0, len(cards), 3)),
                page.guardrails(guardrails)]
    return page.document(f"Run {run.run_id}: {run.model_name}", sections)


def _header(run: RunInfo, meta: dict[str, Any], version: str, rows: int, described: str) -> str:
    metrics = " · ".join(f"{k} {v:.4f}" for k, v in meta["validation_metrics"].items())
    fit_rows = meta.get("fit_rows") or {}
    sampled = ""
    if fit_rows.get("sampled_from"):  # a big dataset: say what the search saw and what the deployed model saw
        searched = fit_rows["holdout_fit"] + fit_rows["validation"]
        deployed = "refit on all of them" if fit_rows["final_fit"] >= fit_rows["sampled_from"] else "this judged fit"
        sampled = (f"<div class='muted'>searched on a sample of {searched:,} of {fit_rows['sampled_from']:,} rows; "
                   f"the deployed model is {deployed}</div>")
    return (f"<h1>{html.escape(run.model_name)} v{html.escape(version)} · run {html.escape(run.run_id)}</h1>"
            f"<div class='muted'>dataset {html.escape(run.dataset_name)} v{run.dataset_version} · best learner "
            f"{html.escape(str(meta.get('best_learner')))} · {rows:,} validation rows ({html.escape(described)})"
            f" · primary metric {html.escape(run.metric)}</div>"
            f"<div class='muted'>{html.escape(metrics)}</div>{sampled}")
