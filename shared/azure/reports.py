"""Run reports in Azure: the same page as locally, from what AutoML logged and what the deployment answers.

The page is written when a run's decision is final and kept beside the dataset
versions (``reports/{run}.html``). It shows the decision with both numbers of
the gate, the model's answers on the rows held out of its training (ROC,
precision and recall, calibration and the confusion matrix, or for regression
predicted against actual), the leaderboard of AutoML's trials with the primary
metric each logged, every metric the best trial logged, the dataset's
guardrails, and a link to the run in Azure ML studio.

A forecaster's page shows, per series (up to ``SERIES_SHOWN`` of them), what
happened in its held-out window against what the deployment forecast for it,
and AutoML's trials ranked by the metric of its rolling-origin backtest, with
the seasonal naive baseline's score where AutoML tried it.
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from shared import metrics
from shared import report_html as page
from shared.azure import holdout
from shared.azure.blobstore import BlobStore
from shared.azure.config import AzureSettings
from shared.azure.deployment import Answers, AzureDeployer
from shared.azure.run_metrics import RunMetrics, RunMetricsUnavailable
from shared.ports import DatasetRegistry, DatasetVersion, ModelRegistry, RunInfo, RunReports
from shared.schema import TimeSeries

log = logging.getLogger(__name__)
TRIALS_READ = 50  # the most trials whose metrics the leaderboard reads (one tracking-server call each)
SERIES_SHOWN = 12  # a forecaster's series charted, the first by name
NAIVE = "SeasonalNaive"  # AutoML's seasonal naive forecaster, the baseline a forecast has to beat


def report_path(run_id: str) -> str:
    return f"reports/{run_id.replace('/', '%2F')}.html"


class AzureRunReports(RunReports):
    def __init__(self, ml: Any, store: BlobStore, datasets: DatasetRegistry, registry: ModelRegistry,
                 deployer: AzureDeployer, run_metrics: RunMetrics, azure: AzureSettings) -> None:
        self.ml = ml
        self.store = store
        self.datasets = datasets
        self.registry = registry
        self.deployer = deployer
        self.run_metrics = run_metrics
        self.azure = azure

    def write(self, run: RunInfo, decision: dict[str, Any]) -> None:
        self.store.replace(report_path(run.run_id), self.render(run, decision).encode("utf-8"))

    def html(self, run_id: str) -> str | None:
        found = self.store.read(report_path(run_id))
        return found.decode("utf-8") if found is not None else None

    def studio_url(self, run_id: str) -> str:
        workspace = (f"/subscriptions/{self.azure.subscription_id}/resourceGroups/{self.azure.resource_group}"
                     f"/providers/Microsoft.MachineLearningServices/workspaces/{self.azure.workspace}")
        return f"https://ml.azure.com/runs/{quote(run_id)}?wsid={quote(workspace)}"

    def render(self, run: RunInfo, decision: dict[str, Any]) -> str:
        metric = metrics.resolve(run.metric)
        model = self.registry.find_by_run(run.model_name, run.run_id)
        best = str(run.result.get("best_child_run_id") or "")
        logged = self._logged(best)
        sections = [self._header(run, model.version if model else "?", logged.get(metric.name)),
                    page.decision(decision)]
        held = self.deployer.held_out_rows(model) if model is not None else None
        dataset = held[0] if held else self.datasets.get(run.dataset_name, run.dataset_version or None)
        slot = str(decision.get("slot") or "")
        answers = self.deployer.answers_on(model, slot, held[1], held[0]) if model and held and slot else None
        if held is not None and answers is not None and held[0].schema.time_series is not None:
            sections += self._forecast(held[0], held[1], answers, held[0].schema.time_series, run, metric)
        elif held is not None and answers is not None:
            trained_on, records = held
            rows = f"{len(records):,} rows held out of training"
            truth = [row.get(trained_on.schema.target) for row in records]
            classes = list(answers.classes)
            y = np.asarray(truth, dtype=object if classes else float)
            scores = _scores(y, answers.outputs, classes)
            charts = page.evaluation(y, answers.outputs, classes, None, 0.5, rows, scores)
            sections += [page.row(*charts[:3]), page.row(*charts[3:], self._leaderboard(run, metric, dataset))]
        else:
            sections += [page.row(page.figure("Held-out rows", "<p class='muted'>the model did not answer them: it "
                                              "was not deployed</p>", ""), self._leaderboard(run, metric, dataset))]
        sections += [_logged_table(best, logged), page.guardrails(list(dataset.guardrails) if dataset else [])]
        return page.document(f"Run {run.run_id}: {run.model_name}", sections)

    def _forecast(self, dataset: DatasetVersion, records: list[dict[str, str | None]], answers: Answers,
                  settings: TimeSeries, run: RunInfo, metric: metrics.Metric) -> list[str]:
        """A forecaster's sections: the backtest's ranking and the forecasts against what happened, overall and
        per series."""
        windows = forecast_windows(records, answers.outputs[:, 0], settings, dataset.schema.target)
        shown = windows[:SERIES_SHOWN]
        horizon = settings.horizon
        cards = [page.figure(f"{w['series']}: actual and forecast", page.forecast_chart(w),
                             f"dark: what happened; blue: forecast of these {horizon} held-out period(s)")
                 for w in shown]
        y = np.asarray([_number(row.get(dataset.schema.target)) for row in records], dtype=float)
        answered = np.isfinite(answers.outputs[:, 0]) & np.isfinite(y)
        rows = (f"{int(answered.sum()):,} of {len(records):,} rows of each series' last {horizon} "
                f"{settings.frequency or ''} period(s), held out of training").replace("  ", " ")
        overall = page.evaluation(y[answered], answers.outputs[answered], [], None, 0.5, rows, {})[0]
        counted = f"{len(shown)} of {len(windows)} series" if len(windows) > len(shown) else \
            f"{len(windows)} series"
        sections = [page.row(self._leaderboard(run, metric, dataset), overall),
                    f"<div class='muted'>Forecasts of {html.escape(counted)}"
                    + (f" by {html.escape(', '.join(settings.series))}" if settings.series else "") + "</div>"]
        sections += [page.row(*cards[i: i + 3]) for i in range(0, len(cards), 3)]
        return sections

    def _header(self, run: RunInfo, version: str, logged: float | None) -> str:
        score = f" · AutoML's validation {run.metric} {logged:.4f}" if logged is not None else ""
        return (f"<h1>{html.escape(run.model_name)} v{html.escape(version)} · run {html.escape(run.run_id)}</h1>"
                f"<div class='muted'>dataset {html.escape(run.dataset_name)} v{run.dataset_version} · best learner "
                f"{html.escape(str(run.result.get('best_learner') or '?'))} · primary metric "
                f"{html.escape(run.metric)}{html.escape(score)}</div>"
                f"<div class='muted'><a href='{html.escape(self.studio_url(run.run_id))}'>the run in Azure ML "
                "studio</a> (its children, outputs and logs)</div>")

    def _logged(self, run_id: str) -> dict[str, float]:
        if not run_id:
            return {}
        try:
            return self.run_metrics.of(run_id)
        except RunMetricsUnavailable as error:
            log.warning("No logged metrics for %s: %s", run_id, error)
            return {}

    def _leaderboard(self, run: RunInfo, metric: metrics.Metric, dataset: DatasetVersion | None = None) -> str:
        """AutoML's trials, each learner's best by the primary metric it logged (for a forecast, over its
        rolling-origin backtest)."""
        node = str(run.result.get("automl_run_id") or "")
        trials: list[dict[str, Any]] = []
        if node:
            for child in list(self.ml.jobs.list(parent_job_name=node))[:TRIALS_READ]:
                learner = (child.properties or {}).get("run_algorithm")
                value = self._logged(str(child.name)).get(metric.name) if learner else None
                if learner and value is not None:
                    # the chart ranks by "score" when greater is better, else by "cv_loss" (a loss: lower)
                    trials.append({"learner": str(learner), "score": value, "cv_loss": value})
        board = page.leaderboard(trials, greater_is_better=metric.greater_is_better)
        if dataset is not None and dataset.schema.time_series is not None:
            naive = [t["score"] for t in trials if t["learner"] == NAIVE]
            best = (max if metric.greater_is_better else min)(naive) if naive else None
            caption = (f"{len(trials)} trials; {metric.name} as AutoML logged it over its rolling-origin backtest"
                       + (f"; seasonal naive {best:.4f}" if best is not None else ""))
            return page.figure("Backtest", board, caption)
        caption = f"{len(trials)} trials; {metric.name} as AutoML logged it on its validation split"
        return page.figure("Leaderboard", board, caption)


def _number(value: str | None) -> float:
    try:
        return float(value) if value is not None else np.nan
    except ValueError:
        return np.nan


def forecast_windows(records: list[dict[str, str | None]], forecasts: Any, settings: TimeSeries, target: str
                     ) -> list[dict[str, Any]]:
    """Each series' held-out window in time order, as ``report_html.forecast_chart`` draws it: what happened
    and what was forecast (not a number where the model gave none), its first and last time as written. No
    history before it: the page reads the held-out rows only, never the whole training copy. By series name."""
    frame = pd.DataFrame({"series": [" · ".join(str(row.get(c) or "") for c in settings.series) or target
                                     for row in records],
                          "written": [row.get(settings.time_column) or "" for row in records],
                          "actual": [_number(row.get(target)) for row in records],
                          "forecast": np.asarray(forecasts, dtype=float)})
    frame["time"] = holdout.wall_clock(frame["written"])
    windows = []
    for series, part in frame.sort_values(["series", "time"], kind="mergesort").groupby("series", sort=True):
        windows.append({"series": str(series), "history": [], "actual": part["actual"].tolist(),
                        "forecast": part["forecast"].tolist(), "first": str(part["written"].iloc[0]),
                        "last": str(part["written"].iloc[-1])})
    return windows


def _scores(y: Any, outputs: Any, classes: list[str]) -> dict[str, float]:
    """The metrics the charts' captions quote, on the held-out rows."""
    if not classes:
        return {}
    found = {}
    for name in ("AUC_weighted", "average_precision_score_weighted"):
        try:
            found[name] = metrics.resolve(name).compute(np.asarray([str(v) for v in y], dtype=object), outputs,
                                                        classes, 0.5)
        except ValueError:
            continue
    return found


def _logged_table(run_id: str, logged: dict[str, float]) -> str:
    if not logged:
        return "<div class='card'><h2>Logged metrics</h2><p class='muted'>none could be read</p></div>"
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{value:.4f}</td></tr>"
                   for name, value in sorted(logged.items()))
    return (f"<div class='card'><h2>Logged metrics of the best trial</h2><p class='muted'>{html.escape(run_id)}, "
            f"as AutoML logged them</p><table>{rows}</table></div>")
