"""Time-series forecasting on the local engine (knows nothing of Azure Functions).

- ``series``: the frequency, inferred from the timestamps, and the checks each series must pass;
- ``baselines``: seasonal naive, damped Holt-Winters and a harmonic regression, one series at a time;
- ``model``: the LightGBM models pooled over every series, the rolling-origin backtest that chooses among them
  and the baselines, and the fitted ``Forecaster`` that answers future rows.
"""

from shared.forecasting.baselines import damped_ets, harmonic, seasonal_naive
from shared.forecasting.model import CANDIDATES, Forecaster, fit, rolling_origin_folds
from shared.forecasting.series import (
    Finding,
    ForecastError,
    ForecastSpec,
    Frequency,
    check_series,
    infer_frequency,
    min_history,
)

__all__ = ["CANDIDATES", "Finding", "ForecastError", "ForecastSpec", "Forecaster", "Frequency", "check_series",
           "damped_ets", "fit", "harmonic", "infer_frequency", "min_history", "rolling_origin_folds",
           "seasonal_naive"]
