"""Statistical forecasts of one series: seasonal naive (the baseline), damped Holt-Winters and a harmonic
regression with AR(1) errors (``shared.forecasting.model`` weighs them against its LightGBM models)."""

from __future__ import annotations

import math

import numpy as np

from shared.forecasting.series import FloatArray, seasons_back, take_at

MAX_HARMONICS = 10


def seasonal_naive(y: FloatArray, season: int, horizon: int) -> FloatArray:
    """The latest value of the same season, for each of the next ``horizon`` periods."""
    steps = np.arange(1, horizon + 1, dtype=np.int64)
    return take_at(y, len(y) - 1 + steps - seasons_back(steps, season) * season)


# Smoothing weights tried by the damped Holt-Winters fit: level, trend, season, damping.
_ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
_BETAS = (0.0, 0.01, 0.03, 0.1, 0.2)
_GAMMAS = (0.0, 0.05, 0.1, 0.2, 0.4)
_PHIS = (0.8, 0.9, 0.95, 0.98, 1.0)


def _ets_grid() -> FloatArray:
    grid = [(a, b, g, p) for a in _ALPHAS for b in _BETAS for g in _GAMMAS for p in _PHIS if b <= a and g <= 1 - a]
    return np.asarray(grid, dtype=np.float64)


_GRID = _ets_grid()


def damped_ets(y: FloatArray, season: int, horizon: int) -> FloatArray:
    """Holt-Winters with a damped trend, its season added or, for positive series, multiplied (a season that grows
    with the level), whichever fits the history better one step ahead. Without two full seasons, no season."""
    m = season if season > 1 and len(y) >= 2 * season else 1
    if len(y) < 3:
        return np.full(horizon, y[-1])
    forecast, error = _holt_winters(y, m, horizon, multiplicative=False)
    if m > 1 and bool((y > 0).all()):
        scaled, scaled_error = _holt_winters(y, m, horizon, multiplicative=True)
        if scaled_error < error:
            return scaled
    return forecast


def _initial_state(y: FloatArray, m: int, multiplicative: bool) -> tuple[float, float, FloatArray]:
    """Level, trend and season before the first value: a straight line through the first seasons (up to three),
    and each season position's mean departure from it."""
    seasons = min(len(y) // m, 3) if m > 1 else 0
    first = y[: max(seasons * m, min(len(y), 6))]
    slope, intercept = np.polyfit(np.arange(len(first)), first, 1)
    if m == 1:
        return float(intercept - slope), float(slope), np.zeros(1)
    line = intercept + slope * np.arange(len(first))
    shape = (first / line if multiplicative else first - line).reshape(seasons, m).mean(axis=0)
    return float(intercept - slope), float(slope), np.asarray(shape, dtype=np.float64)


def _holt_winters(y: FloatArray, m: int, horizon: int, multiplicative: bool) -> tuple[FloatArray, float]:
    """Every weight set of the grid run at once (error-correction form); the forecast of the one with the lowest
    one-step squared error, and that error."""
    alpha, beta, gamma, phi = (_GRID[:, i] for i in range(4))
    if m == 1:
        gamma = np.zeros_like(gamma)
    level0, trend0, shape = _initial_state(y, m, multiplicative)
    level = np.full(len(_GRID), level0)
    trend = np.full(len(_GRID), trend0)
    seasonal = np.tile(shape, (len(_GRID), 1))
    squared = np.zeros(len(_GRID))
    for t, value in enumerate(y):
        k = t % m
        expected = level + phi * trend
        if multiplicative:
            factor = np.maximum(seasonal[:, k], 1e-3)
            error = value - expected * factor
            level, trend = expected + alpha * error / factor, phi * trend + beta * error / factor
            seasonal[:, k] = factor + gamma * error / np.maximum(np.abs(expected), 1e-9)
        else:
            error = value - (expected + seasonal[:, k])
            level, trend = expected + alpha * error, phi * trend + beta * error
            seasonal[:, k] += gamma * error
        squared += error * error
    squared[~np.isfinite(squared)] = np.inf
    best = int(np.argmin(squared))
    steps = np.arange(1, horizon + 1)
    path = level[best] + np.cumsum(phi[best] ** steps) * trend[best]
    season = seasonal[best, (len(y) - 1 + steps) % m]
    out = path * season if multiplicative else path + season
    return np.asarray(out, dtype=np.float64), float(squared[best])



def harmonic(y: FloatArray, cycle: float, horizon: int) -> FloatArray:
    """A straight trend and sine waves of the seasonal cycle, by least squares, as many waves as the Akaike
    criterion prefers; the residuals' lag-one autocorrelation carries the latest residual into the first periods
    ahead, fading (regression with AR(1) errors: a run of good or bad periods lasts a while, then the pattern
    returns). The cycle may be fractional, so a weekly series follows the calendar year."""
    n = len(y)
    t = np.arange(n + horizon, dtype=np.float64)
    most = min(MAX_HARMONICS, int(cycle // 2), max(0, (n - 4) // 4)) if cycle > 1 else 0
    best: tuple[float, FloatArray] | None = None
    for waves in range(most + 1):
        columns = [np.ones_like(t), t / n]
        for k in range(1, waves + 1):
            angle = 2 * np.pi * k * t / cycle
            columns += [np.sin(angle), np.cos(angle)]
        x = np.column_stack(columns)
        coefficients = np.linalg.lstsq(x[:n], y, rcond=None)[0]
        fitted = x @ coefficients
        squared = float(np.sum((y - fitted[:n]) ** 2))
        criterion = n * math.log(max(squared, 1e-12) / n) + 2 * x.shape[1]
        if best is None or criterion < best[0]:
            best = (criterion, fitted)
    assert best is not None
    fitted = best[1]
    residual = y - fitted[:n]
    carry = 0.0
    if n > 8 and np.std(residual[1:]) > 0 and np.std(residual[:-1]) > 0:
        carry = min(0.99, max(0.0, float(np.corrcoef(residual[1:], residual[:-1])[0, 1])))
    return np.asarray(fitted[n:] + carry ** np.arange(1, horizon + 1) * residual[-1], dtype=np.float64)
