"""The pieces of a run report page, whichever backend writes it: inline SVG charts drawn here from numbers (ROC,
precision and recall, calibration, confusion matrix, scatter plots, bars), the leaderboard, the guardrails and the
decision. The page opens anywhere, offline, with nothing to load."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from numpy.typing import NDArray

W, H, PAD = 320, 240, 40


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2329;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:0 0 6px}.muted{color:#5f6b76}
.row{display:flex;flex-wrap:wrap;gap:16px;margin:16px 0}.card{border:1px solid #d9dee3;border-radius:6px;padding:12px}
.decision{padding:10px 12px;border-radius:6px;margin:12px 0}.deployed{background:#e7f6ec}.rejected{background:#fdf3e1}
.refused,.failed{background:#fde8e8}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left}
.alert{color:#b42318}.warning{color:#b54708}.info{color:#5f6b76}svg text{font:11px system-ui,sans-serif}"""


def decision(decision: dict[str, Any]) -> str:
    kind = str(decision.get("decision", "pending"))
    numbers = []
    if decision.get("challenger") is not None:
        numbers.append(f"this model {decision['challenger']:.4f}")
    if decision.get("champion") is not None:
        numbers.append(f"production v{decision.get('champion_version', '?')} {decision['champion']:.4f}")
    return (f"<div class='decision {html.escape(kind)}'><b>{html.escape(kind.capitalize())}</b>: "
            f"{html.escape(str(decision.get('reason', '')))}"
            f"{' (' + html.escape(', '.join(numbers)) + ')' if numbers else ''}</div>")


def row(*cards: str) -> str:
    return f"<div class='row'>{''.join(cards)}</div>"


def figure(title: str, body: str, caption: str) -> str:
    return (f"<div class='card'><h2>{html.escape(title)}</h2>{body}"
            f"<div class='muted'>{html.escape(caption)}</div></div>")


def roc(truth: NDArray[Any], score: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    order = np.argsort(-score, kind="mergesort")
    hits = truth[order]
    tpr = np.concatenate([[0.0], np.cumsum(hits) / max(hits.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(1 - hits) / max((1 - hits).sum(), 1)])
    return fpr, tpr


def pr(truth: NDArray[Any], score: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    order = np.argsort(-score, kind="mergesort")
    hits = truth[order]
    found = np.cumsum(hits)
    precision = found / np.arange(1, len(hits) + 1)
    recall = found / max(hits.sum(), 1)
    return recall, precision


def calibration(truth: NDArray[Any], score: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    bins = np.minimum((score * 10).astype(int), 9)
    xs, ys = [], []
    for b in range(10):
        chosen = bins == b
        if chosen.any():
            xs.append(float(score[chosen].mean()))
            ys.append(float(truth[chosen].mean()))
    return np.array(xs), np.array(ys)


def line_chart(xs: NDArray[Any], ys: NDArray[Any], x_label: str, y_label: str, *, diagonal: bool = False,
                dots: bool = False, line: bool = True) -> str:
    if len(xs) > 400:  # enough points for the eye, a small file
        keep = np.linspace(0, len(xs) - 1, 400).astype(int)
        xs, ys = xs[keep], ys[keep]
    def sx(v: float) -> float:
        return PAD + v * (W - PAD - 8)

    def sy(v: float) -> float:
        return H - PAD - v * (H - PAD - 8)

    points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
    parts = [axes(x_label, y_label)]
    if diagonal:
        parts.append(f"<line x1='{sx(0)}' y1='{sy(0)}' x2='{sx(1)}' y2='{sy(1)}' stroke='#b8c0c8' "
                     "stroke-dasharray='4 3'/>")
    if line:
        parts.append(f"<polyline fill='none' stroke='#2563eb' stroke-width='2' points='{points}'/>")
    if dots:
        parts += [f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='3' fill='#2563eb'/>"
                  for x, y in zip(xs, ys, strict=True)]
    return f"<svg width='{W}' height='{H}' role='img'>{''.join(parts)}</svg>"


def scatter(xs: NDArray[Any], ys: NDArray[Any], x_label: str, y_label: str, *, diagonal: bool = False) -> str:
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

    chart = line_chart(unit(xs, x_low, x_high), unit(ys, y_low, y_high), f"{x_label} ({x_low:.3g} to {x_high:.3g})",
                        f"{y_label} ({y_low:.3g} to {y_high:.3g})", diagonal=diagonal, dots=True, line=False)
    return chart


def axes(x_label: str, y_label: str, ticks_shown: bool = True) -> str:
    """The plot's frame and labels; the ticks mark its unit square (the labels say what it spans)."""
    ticks = []
    for v in (0, 0.5, 1) if ticks_shown else ():
        x = PAD + v * (W - PAD - 8)
        y = H - PAD - v * (H - PAD - 8)
        ticks.append(f"<text x='{x:.0f}' y='{H - PAD + 14}' text-anchor='middle'>{v:g}</text>")
        ticks.append(f"<text x='{PAD - 6}' y='{y + 4:.0f}' text-anchor='end'>{v:g}</text>")
    return (f"<rect x='{PAD}' y='8' width='{W - PAD - 8}' height='{H - PAD - 8}' fill='#f8fafc' stroke='#d9dee3'/>"
            f"{''.join(ticks)}<text x='{(W + PAD) / 2:.0f}' y='{H - 6}' text-anchor='middle'>"
            f"{html.escape(x_label)}</text>"
            f"<text transform='translate(10,{(H - PAD) / 2:.0f}) rotate(-90)' text-anchor='middle'>"
            f"{html.escape(y_label)}</text>")


def confusion(y: NDArray[Any], labels: NDArray[Any], classes: list[str]) -> str:
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


def bars(values: dict[str, float], limit: int) -> str:
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


def leaderboard(trials: list[dict[str, Any]], greater_is_better: bool = False, limit: int = 30) -> str:
    """Each learner's best trial: by ``cv_loss`` (lower is better), or by ``score`` when ``greater_is_better``;
    the ``limit`` best."""
    sign = -1.0 if greater_is_better else 1.0
    best: dict[str, float] = {}
    for trial in trials:
        value = trial.get("score") if greater_is_better else trial.get("cv_loss", trial.get("cv_log_loss"))
        if value is None:  # older local runs name the loss cv_log_loss
            continue
        if trial["learner"] not in best or sign * float(value) < sign * best[trial["learner"]]:
            best[trial["learner"]] = float(value)
    if not best:
        return "<p class='muted'>no trials recorded</p>"
    ranked = sorted(best.items(), key=lambda kv: sign * kv[1])[:limit]
    worst = max(v for _, v in ranked) if not greater_is_better else min(v for _, v in ranked)
    left = max(88, 8 + 6 * max(len(learner) for learner, _ in ranked))  # room for the longest name
    rows = []
    for i, (learner, loss) in enumerate(ranked):
        y = 6 + i * 18
        width = 150 * (1 - abs(loss - ranked[0][1]) / (abs(worst - ranked[0][1]) + 1e-9) * 0.8)
        colour = "#16a34a" if i == 0 else "#94a3b8"
        rows.append(f"<text x='{left}' y='{y + 11}' text-anchor='end'>{html.escape(learner)}</text>"
                    f"<rect x='{left + 4}' y='{y}' width='{width:.1f}' height='13' fill='{colour}'/>"
                    f"<text x='{left + 8 + width:.0f}' y='{y + 11}'>{loss:.4f}</text>")
    return f"<svg width='{left + 232}' height='{12 + len(ranked) * 18}' role='img'>{''.join(rows)}</svg>"


def guardrails(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "<div class='card'><h2>Data guardrails</h2><p class='muted'>none recorded</p></div>"
    items = "".join(f"<li class='{html.escape(f['severity'])}'><b>{html.escape(f['check'].replace('_', ' '))}</b> "
                    f"({html.escape(f['severity'])}): {html.escape(f['message'])}</li>" for f in findings)
    return f"<div class='card'><h2>Data guardrails</h2><ul>{items}</ul></div>"


def evaluation(y: NDArray[Any], outputs: NDArray[Any], classes: list[str], labels: NDArray[Any] | None,
               threshold: float, rows: str, scores: dict[str, float]) -> list[str]:
    """The charts of a model's answers on known rows (``rows`` says which): for a classifier (``outputs``: class
    probabilities in ``classes`` order) ROC, precision and recall, calibration and the confusion matrix; for a
    regression model (``outputs``: rows x 1) predicted against actual and the residuals."""
    if not classes:
        actual = np.asarray(y, dtype=float)
        predicted = outputs[:, 0]
        return [figure("Predicted against actual", scatter(actual, predicted, "actual", "predicted", diagonal=True),
                       rows),
                figure("Residuals", scatter(predicted, actual - predicted, "predicted", "actual - predicted"), rows)]
    truth = (np.asarray(y, dtype=str) == classes[-1]).astype(int)
    score = outputs[:, -1]
    chosen = labels if labels is not None else np.asarray(classes, dtype=object)[outputs.argmax(axis=1)]
    return [
        figure("ROC curve", line_chart(*roc(truth, score), "false positive rate", "true positive rate",
                                       diagonal=True), f"AUC {scores.get('AUC_weighted', 0):.4f}"),
        figure("Precision and recall", line_chart(*pr(truth, score), "recall", "precision"),
               f"average precision {scores.get('average_precision_score_weighted', 0):.4f}"),
        figure("Calibration", line_chart(*calibration(truth, score), "predicted probability", "observed rate",
                                         diagonal=True, dots=True), f"10 bins of the {rows}"),
        figure(f"Confusion matrix at threshold {threshold:.3f}",
               confusion(np.asarray(y, dtype=str), np.asarray(chosen, dtype=str), classes),
               f"{rows}: truth down, prediction across"),
    ]


def forecast_chart(window: dict[str, Any]) -> str:
    """One series around its held-out window: the values before it (grey), what happened in it (dark) and what
    the judged fit forecast for it (blue), period by period; a dashed line where the forecast starts."""
    before = np.asarray(window["history"], dtype=float)
    actual = np.asarray(window["actual"], dtype=float)
    forecast = np.asarray(window["forecast"], dtype=float)
    values = np.concatenate([before, actual, forecast])
    values = values[np.isfinite(values)]
    if not len(values):
        return "<p class='muted'>no values</p>"
    low, high = float(values.min()), float(values.max())
    span = high - low if high > low else 1.0
    count = len(before) + max(len(actual), len(forecast))

    def sx(i: float) -> float:
        return PAD + i / max(count - 1, 1) * (W - PAD - 8)

    def sy(v: float) -> float:
        return H - PAD - (v - low) / span * (H - PAD - 8)

    def polyline(start: int, ys: NDArray[Any], colour: str) -> str:
        points = " ".join(f"{sx(start + i):.1f},{sy(v):.1f}" for i, v in enumerate(ys) if np.isfinite(v))
        return f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{points}'/>"

    cut = sx(len(before) - 0.5)
    parts = [axes(f"{window['first']} to {window['last']}", f"{low:.3g} to {high:.3g}", ticks_shown=False),
             f"<line x1='{cut:.1f}' y1='8' x2='{cut:.1f}' y2='{H - PAD}' stroke='#b8c0c8' stroke-dasharray='4 3'/>",
             polyline(0, np.concatenate([before, actual[:1]]), "#94a3b8"), polyline(len(before), actual, "#1d2329"),
             polyline(len(before), forecast, "#2563eb")]
    return f"<svg width='{W}' height='{H}' role='img'>{''.join(parts)}</svg>"


def document(title: str, sections: list[str]) -> str:
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{''.join(sections)}</body></html>")
