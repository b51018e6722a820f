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
from numpy.typing import NDArray

from shared.local import artifacts
from shared.model_contract import columns_from_frame
from shared.ports import DatasetRegistry, ModelRegistry, RunInfo, RunReports

REPORT_FILE = "report.html"
W, H, PAD = 320, 240, 40


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
    model = artifacts.load_judged(folder)  # the deployed refit has seen these rows
    frame = pd.read_csv(folder / "validation.csv", keep_default_na=True)
    outputs = model.predict(columns_from_frame(frame, model.signature))
    trials = json.loads((folder / "trials.json").read_text()) if (folder / "trials.json").exists() else []
    loss = meta.get("search", {}).get("loss") or ("rmse" if model.signature.regression else "log loss")
    common = (_figure("Feature importance", _bars(meta.get("feature_importance", {}), 12), "share of the model's use"),
              _figure("Leaderboard", _leaderboard(trials), f"{len(trials)} trials; best cross-validated {loss}"))
    if model.signature.regression:
        actual = pd.to_numeric(frame[meta["target"]], errors="coerce").to_numpy(dtype=float)
        predicted = outputs[:, 0]
        charts = [_row(_figure("Predicted against actual", _scatter(actual, predicted, "actual", "predicted",
                                                                    diagonal=True), "validation rows"),
                       _figure("Residuals", _scatter(predicted, actual - predicted, "predicted",
                                                     "actual - predicted"), "validation rows"),
                       *common)]
        described = f"target {meta['target']!r}, regression"
    else:
        charts = _classification(meta, model, frame, outputs, common)
        described = f"positive class {model.signature.positive_class!r}"
    sections = [_header(run, meta, version, len(frame), described), _decision(decision), *charts,
                _guardrails(guardrails)]
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Run {html.escape(run.run_id)}: {html.escape(run.model_name)}</title><style>{CSS}</style></head>"
            f"<body>{''.join(sections)}</body></html>")


def _classification(meta: dict[str, Any], model: artifacts.LoadedModel, frame: pd.DataFrame, proba: NDArray[Any],
                    common: tuple[str, str]) -> list[str]:
    classes = list(model.signature.classes)
    y = frame[meta["target"]].astype(str).to_numpy()
    truth = (y == classes[-1]).astype(int)
    score = proba[:, -1]
    labels = np.asarray(model.results(proba), dtype=str)
    scores = meta["validation_metrics"]
    return [
        _row(_figure("ROC curve", _line_chart(*_roc(truth, score), "false positive rate", "true positive rate",
                                              diagonal=True), f"AUC {scores.get('AUC_weighted', 0):.4f}"),
             _figure("Precision and recall", _line_chart(*_pr(truth, score), "recall", "precision"),
                     f"average precision {scores.get('average_precision_score_weighted', 0):.4f}"),
             _figure("Calibration", _line_chart(*_calibration(truth, score), "predicted probability",
                                                "observed rate", diagonal=True, dots=True),
                     "10 bins of the validation rows")),
        _row(_figure(f"Confusion matrix at threshold {model.signature.threshold or 0.5:.3f}",
                     _confusion(y, labels, classes),
                     "validation rows: truth down, prediction across"), *common),
    ]


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2329;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:0 0 6px}.muted{color:#5f6b76}
.row{display:flex;flex-wrap:wrap;gap:16px;margin:16px 0}.card{border:1px solid #d9dee3;border-radius:6px;padding:12px}
.decision{padding:10px 12px;border-radius:6px;margin:12px 0}.deployed{background:#e7f6ec}.rejected{background:#fdf3e1}
.refused,.failed{background:#fde8e8}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left}
.alert{color:#b42318}.warning{color:#b54708}.info{color:#5f6b76}svg text{font:11px system-ui,sans-serif}"""


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


def _decision(decision: dict[str, Any]) -> str:
    kind = str(decision.get("decision", "pending"))
    numbers = []
    if decision.get("challenger") is not None:
        numbers.append(f"this model {decision['challenger']:.4f}")
    if decision.get("champion") is not None:
        numbers.append(f"production v{decision.get('champion_version', '?')} {decision['champion']:.4f}")
    return (f"<div class='decision {html.escape(kind)}'><b>{html.escape(kind.capitalize())}</b>: "
            f"{html.escape(str(decision.get('reason', '')))}"
            f"{' (' + html.escape(', '.join(numbers)) + ')' if numbers else ''}</div>")


def _row(*cards: str) -> str:
    return f"<div class='row'>{''.join(cards)}</div>"


def _figure(title: str, body: str, caption: str) -> str:
    return (f"<div class='card'><h2>{html.escape(title)}</h2>{body}"
            f"<div class='muted'>{html.escape(caption)}</div></div>")


def _roc(truth: NDArray[Any], score: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    order = np.argsort(-score, kind="mergesort")
    hits = truth[order]
    tpr = np.concatenate([[0.0], np.cumsum(hits) / max(hits.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(1 - hits) / max((1 - hits).sum(), 1)])
    return fpr, tpr


def _pr(truth: NDArray[Any], score: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    order = np.argsort(-score, kind="mergesort")
    hits = truth[order]
    found = np.cumsum(hits)
    precision = found / np.arange(1, len(hits) + 1)
    recall = found / max(hits.sum(), 1)
    return recall, precision


def _calibration(truth: NDArray[Any], score: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    bins = np.minimum((score * 10).astype(int), 9)
    xs, ys = [], []
    for b in range(10):
        chosen = bins == b
        if chosen.any():
            xs.append(float(score[chosen].mean()))
            ys.append(float(truth[chosen].mean()))
    return np.array(xs), np.array(ys)


def _line_chart(xs: NDArray[Any], ys: NDArray[Any], x_label: str, y_label: str, *, diagonal: bool = False,
                dots: bool = False, line: bool = True) -> str:
    if len(xs) > 400:  # enough points for the eye, a small file
        keep = np.linspace(0, len(xs) - 1, 400).astype(int)
        xs, ys = xs[keep], ys[keep]
    def sx(v: float) -> float:
        return PAD + v * (W - PAD - 8)

    def sy(v: float) -> float:
        return H - PAD - v * (H - PAD - 8)

    points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
    parts = [_axes(x_label, y_label)]
    if diagonal:
        parts.append(f"<line x1='{sx(0)}' y1='{sy(0)}' x2='{sx(1)}' y2='{sy(1)}' stroke='#b8c0c8' "
                     "stroke-dasharray='4 3'/>")
    if line:
        parts.append(f"<polyline fill='none' stroke='#2563eb' stroke-width='2' points='{points}'/>")
    if dots:
        parts += [f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='3' fill='#2563eb'/>"
                  for x, y in zip(xs, ys, strict=True)]
    return f"<svg width='{W}' height='{H}' role='img'>{''.join(parts)}</svg>"


def _scatter(xs: NDArray[Any], ys: NDArray[Any], x_label: str, y_label: str, *, diagonal: bool = False) -> str:
    """Dots in the chart's unit square: both axes share one range when the diagonal (y = x) is drawn."""
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    if len(xs) > 400:
        chosen = np.linspace(0, len(xs) - 1, 400).astype(int)
        xs, ys = xs[chosen], ys[chosen]
    if not len(xs):
        return "<p class='muted'>no rows</p>"
    x_low, x_high = (min(xs.min(), ys.min()), max(xs.max(), ys.max())) if diagonal else (xs.min(), xs.max())
    y_low, y_high = (x_low, x_high) if diagonal else (ys.min(), ys.max())

    def unit(values: NDArray[Any], low: float, high: float) -> NDArray[Any]:
        return (values - low) / (high - low) if high > low else np.full(len(values), 0.5)

    chart = _line_chart(unit(xs, x_low, x_high), unit(ys, y_low, y_high), f"{x_label} ({x_low:.3g} to {x_high:.3g})",
                        f"{y_label} ({y_low:.3g} to {y_high:.3g})", diagonal=diagonal, dots=True, line=False)
    return chart


def _axes(x_label: str, y_label: str) -> str:
    ticks = []
    for v in (0, 0.5, 1):
        x = PAD + v * (W - PAD - 8)
        y = H - PAD - v * (H - PAD - 8)
        ticks.append(f"<text x='{x:.0f}' y='{H - PAD + 14}' text-anchor='middle'>{v:g}</text>")
        ticks.append(f"<text x='{PAD - 6}' y='{y + 4:.0f}' text-anchor='end'>{v:g}</text>")
    return (f"<rect x='{PAD}' y='8' width='{W - PAD - 8}' height='{H - PAD - 8}' fill='#f8fafc' stroke='#d9dee3'/>"
            f"{''.join(ticks)}<text x='{(W + PAD) / 2:.0f}' y='{H - 6}' text-anchor='middle'>"
            f"{html.escape(x_label)}</text>"
            f"<text transform='translate(10,{(H - PAD) / 2:.0f}) rotate(-90)' text-anchor='middle'>"
            f"{html.escape(y_label)}</text>")


def _confusion(y: NDArray[Any], labels: NDArray[Any], classes: list[str]) -> str:
    size = 70
    counts = [[int(((y == t) & (labels == p)).sum()) for p in classes] for t in classes]
    peak = max(max(row) for row in counts) or 1
    cells = []
    for i, truth in enumerate(classes):
        cells.append(f"<text x='56' y='{40 + i * size + size / 2:.0f}' text-anchor='end'>{html.escape(truth)}</text>")
        for j, _ in enumerate(classes):
            shade = 0.12 + 0.78 * counts[i][j] / peak
            colour = "#2563eb" if i == j else "#dc2626"
            x, y_top = 60 + j * size, 30 + i * size
            cells.append(f"<rect x='{x}' y='{y_top}' width='{size - 2}' height='{size - 2}' fill='{colour}' "
                         f"fill-opacity='{shade:.2f}'/><text x='{x + size / 2 - 1:.0f}' y='{y_top + size / 2 + 4:.0f}' "
                         f"text-anchor='middle'>{counts[i][j]:,}</text>")
    heads = "".join(f"<text x='{60 + j * size + size / 2:.0f}' y='22' text-anchor='middle'>{html.escape(c)}</text>"
                    for j, c in enumerate(classes))
    width, height = 70 + len(classes) * size, 40 + len(classes) * size
    return f"<svg width='{max(width, 200)}' height='{height}' role='img'>{heads}{''.join(cells)}</svg>"


def _bars(values: dict[str, float], limit: int) -> str:
    items = list(values.items())[:limit]
    if not items:
        return "<p class='muted'>not available for this learner</p>"
    peak = max(v for _, v in items) or 1
    rows = []
    for i, (name, value) in enumerate(items):
        y = 6 + i * 18
        rows.append(f"<text x='118' y='{y + 11}' text-anchor='end'>{html.escape(name[:18])}</text>"
                    f"<rect x='122' y='{y}' width='{150 * value / peak:.1f}' height='13' fill='#2563eb'/>"
                    f"<text x='{126 + 150 * value / peak:.0f}' y='{y + 11}'>{value:.1%}</text>")
    return f"<svg width='{W}' height='{12 + len(items) * 18}' role='img'>{''.join(rows)}</svg>"


def _leaderboard(trials: list[dict[str, Any]]) -> str:
    best: dict[str, float] = {}
    for trial in trials:
        loss = trial.get("cv_loss", trial.get("cv_log_loss"))  # older runs name it so
        if loss is not None and (trial["learner"] not in best or loss < best[trial["learner"]]):
            best[trial["learner"]] = float(loss)
    if not best:
        return "<p class='muted'>no trials recorded</p>"
    ranked = sorted(best.items(), key=lambda kv: kv[1])
    worst = max(v for _, v in ranked)
    rows = []
    for i, (learner, loss) in enumerate(ranked):
        y = 6 + i * 18
        width = 150 * (1 - (loss - ranked[0][1]) / (worst - ranked[0][1] + 1e-9) * 0.8)
        colour = "#16a34a" if i == 0 else "#94a3b8"
        rows.append(f"<text x='88' y='{y + 11}' text-anchor='end'>{html.escape(learner)}</text>"
                    f"<rect x='92' y='{y}' width='{width:.1f}' height='13' fill='{colour}'/>"
                    f"<text x='{96 + width:.0f}' y='{y + 11}'>{loss:.4f}</text>")
    return f"<svg width='{W}' height='{12 + len(ranked) * 18}' role='img'>{''.join(rows)}</svg>"


def _guardrails(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "<div class='card'><h2>Data guardrails</h2><p class='muted'>none recorded</p></div>"
    items = "".join(f"<li class='{html.escape(f['severity'])}'><b>{html.escape(f['check'].replace('_', ' '))}</b> "
                    f"({html.escape(f['severity'])}): {html.escape(f['message'])}</li>" for f in findings)
    return f"<div class='card'><h2>Data guardrails</h2><ul>{items}</ul></div>"
