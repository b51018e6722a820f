"""The local forecaster's core: frequency inference, series checks, time-ordered backtest folds, the forecaster
against seasonal naive, and the forecast API's refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared import forecasting
from shared.errors import DatasetRejected
from shared.forecasting import ForecastError, ForecastSpec
from shared.forecasting import model as forecast_model


@pytest.mark.parametrize(("times", "name"), [
    (pd.date_range("2024-01-01", periods=48, freq="h"), "hourly"),
    (pd.date_range("2024-01-01", periods=60, freq="D"), "daily"),
    (pd.date_range("2024-01-07", periods=60, freq="W-SUN"), "weekly"),
    (pd.date_range("2020-01-01", periods=36, freq="MS"), "monthly"),
    (pd.date_range("2020-01-31", periods=36, freq="ME"), "monthly"),
    (pd.date_range("2015-01-01", periods=20, freq="QS"), "quarterly"),
    (pd.date_range("2000-01-01", periods=20, freq="YS"), "yearly"),
])
def test_each_frequency_is_inferred_with_its_reason(times, name):
    found = forecasting.infer_frequency(times)
    assert found.name == name
    assert "steps are one" in found.reason


def test_month_ends_are_read_on_the_calendar_and_gaps_are_named():
    times = pd.date_range("2020-01-31", periods=30, freq="ME").delete([5, 6])
    found = forecasting.infer_frequency(times)
    assert (found.name, found.anchor) == ("monthly", "end")
    assert "gaps" in found.reason and "month ends" in found.reason


@pytest.mark.parametrize(("times", "why"), [
    (pd.date_range("2024-01-01", periods=20, freq="3D"), "the most common step is 3 days"),
    (pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-15", "2024-04-15", "2024-05-15"]),
     "different days of the month"),
    (pd.date_range("2024-01-01", periods=30, freq="D").append(pd.DatetimeIndex(["2024-01-31 12:00"])),
     "not whole days"),
    (pd.to_datetime(["2024-01-01", "2024-01-02"]), "too few"),
])
def test_irregular_times_are_reported_as_such(times, why):
    found = forecasting.infer_frequency(times)
    assert not found.regular
    assert why in found.reason


def monthly_frame(months: int = 72, seed: int = 0, noise: float = 2.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    sales = 100 + 0.5 * t + 20 * np.sin(2 * np.pi * t / 12) + rng.normal(0, noise, months)
    return pd.DataFrame({"month": pd.date_range("2018-01-01", periods=months, freq="MS"), "sales": sales})


SPEC = ForecastSpec("month", "sales", 6)


def codes(frame: pd.DataFrame, spec: ForecastSpec = SPEC) -> dict[str, forecasting.Finding]:
    return {f.code: f for f in forecasting.check_series(frame, spec).findings}


def test_a_clean_series_has_no_findings():
    checked = forecasting.check_series(monthly_frame(), SPEC)
    assert checked.findings == []
    assert checked.frequency.name == "monthly" and checked.frequency.season == 12


def test_gaps_are_filled_and_said_and_too_many_reject():
    few = codes(monthly_frame().drop(index=[10, 11]))["gap"]
    assert not few.rejects
    assert "misses 2 of its 72 monthly periods (first: 2018-11-01" in few.message and "interpolation" in few.message
    many = codes(monthly_frame().drop(index=range(10, 50, 2)))["gap"]
    assert many.rejects and "too many to fill" in many.message


def test_duplicate_times_reject_naming_the_series_and_time():
    frame = monthly_frame()
    frame = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)
    found = codes(frame)["duplicate_time"]
    assert found.rejects
    assert "2 rows at 1 repeated time(s) (first: 2018-06-01" in found.message


def test_a_history_too_short_for_the_horizon_says_the_minimum():
    found = codes(monthly_frame(30), ForecastSpec("month", "sales", 12))["too_short"]
    assert found.rejects
    assert "has 30 monthly periods of history; forecasting 12 ahead needs at least 36" in found.message
    assert forecasting.min_history(12, 12) == 36


def test_rows_after_the_last_observed_target_are_the_future_not_training():
    frame = monthly_frame()
    frame.loc[len(frame) - 3:, "sales"] = np.nan
    found = codes(frame)["future_rows"]
    assert not found.rejects
    assert "3 row(s) after its last observed target (2023-09-01" in found.message
    model = forecasting.fit(frame, SPEC, ("seasonal-naive",))
    assert model.series[0].end == 68  # trained up to the last observed target
    assert len(model.series[0].known) == 72  # ... and the future rows' known features kept


def test_irregular_and_mixed_series_reject():
    frame = monthly_frame()
    frame.loc[3, "month"] = pd.Timestamp("2018-04-17")
    assert codes(frame)["irregular"].rejects
    with pytest.raises(DatasetRejected, match="irregular timestamps"):
        forecasting.fit(frame, SPEC)
    daily = pd.DataFrame({"month": pd.date_range("2018-01-01", periods=72, freq="D"), "sales": 1.0, "id": "b"})
    both = pd.concat([monthly_frame().assign(id="a"), daily], ignore_index=True)
    found = codes(both, ForecastSpec("month", "sales", 6, ("id",)))
    assert "mixed_frequency" in found and "monthly: a" in found["mixed_frequency"].message


def test_rolling_origin_folds_train_only_on_the_past():
    folds = forecasting.rolling_origin_folds(end=99, horizon=10, folds=3, min_train=40)
    assert [(f.cutoff, f.first, f.last) for f in folds] == [(69, 70, 79), (79, 80, 89), (89, 90, 99)]
    assert all(f.cutoff < f.first for f in folds)
    assert len(forecasting.rolling_origin_folds(end=99, horizon=30, folds=3, min_train=40)) == 2


def test_the_backtest_never_sees_values_after_its_cutoff():
    """Changing the data after a fold's cut-off changes nothing that fold scores on, candidates' forecasts
    included: the forecasts of the last fold are identical when the history after it is wildly different."""
    frame = monthly_frame()
    spec = ForecastSpec("month", "sales", 6)
    cut = frame.iloc[:60]
    changed = frame.copy()
    changed.loc[60:, "sales"] *= 10
    forecasts = [forecasting.fit(f.iloc[:60], spec, ("lightgbm", "ets")).predict(frame.iloc[60:66])
                 for f in (cut, changed)]
    assert np.array_equal(forecasts[0], forecasts[1])
    base = forecasting.check_series(frame, spec)
    assert base.origin is not None
    series = forecast_model._build_series(frame, spec, base.frequency, base.origin, forecast_model._Encoding())
    trimmed = series[0].cut(59, 65)
    assert trimmed is not None and len(trimmed.y) == 60 and trimmed.y[-1] == frame["sales"].iloc[59]


def test_a_spent_budget_judges_on_the_latest_fold_alone():
    frame = monthly_frame(96, seed=3)
    spec = ForecastSpec("month", "sales", 12)
    unhurried = forecasting.fit(frame, spec, ("ets", "seasonal-naive"))
    hurried = forecasting.fit(frame, spec, ("ets", "seasonal-naive"), deadline=0.0)  # already past
    assert (unhurried.folds, hurried.folds) == (5, 1)
    base = forecasting.check_series(frame, spec)
    assert base.origin is not None
    series = forecast_model._build_series(frame, spec, base.frequency, base.origin, forecast_model._Encoding())
    design = forecast_model._Design(base.frequency, base.origin, 0)
    latest, scored = forecast_model.backtest(design, series, 12, ("ets",), folds=1)
    assert scored == 1  # the one fold kept is the most recent one
    assert latest["ets"] == pytest.approx(hurried.scores["ets"])


def test_the_forecaster_beats_seasonal_naive_on_a_clean_seasonal_series():
    frame = monthly_frame(96, seed=3)
    history, future = frame.iloc[:84], frame.iloc[84:]
    model = forecasting.fit(history, ForecastSpec("month", "sales", 12), ("lightgbm", "ets", "seasonal-naive"))
    error = np.mean(np.abs(model.predict(future) - future["sales"]))
    naive = np.mean(np.abs(forecasting.seasonal_naive(history["sales"].to_numpy(), 12, 12) - future["sales"]))
    assert error < 0.6 * naive, (model.chosen, error, naive)
    assert model.scores[model.chosen] < model.scores["seasonal-naive"]


def test_times_before_history_beyond_the_horizon_or_off_the_grid_are_refused():
    model = forecasting.fit(monthly_frame(), SPEC, ("seasonal-naive",))
    ask = lambda when: model.predict(pd.DataFrame({"month": pd.to_datetime([when])}))  # noqa: E731
    assert ask("2024-01-01").shape == (1,)
    with pytest.raises(ForecastError, match=r"not after the end of the history of the series \(2023-12-01"):
        ask("2023-12-01")
    with pytest.raises(ForecastError, match=r"7 monthly periods after the end .* the horizon is 6 periods"):
        ask("2024-07-01")
    with pytest.raises(ForecastError, match="not on the monthly grid"):
        ask("2024-01-15")


def shop_frame(shops: int = 4, days: int = 120, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for shop in range(shops):
        ds = pd.date_range("2024-01-01", periods=days, freq="D")
        promotion = (rng.random(days) < 0.2).astype(float)
        price = np.repeat(rng.uniform(8, 12, days // 10 + 1), 10)[:days]
        week = 1 + 0.3 * np.sin(2 * np.pi * ds.day_of_week.to_numpy() / 7)
        sales = (50 + 10 * shop) * week * (1 + 0.8 * promotion) * (10 / price) + rng.normal(0, 1, days)
        frames.append(pd.DataFrame({"day": ds, "shop": f"shop{shop}", "promotion": promotion, "price": price,
                                    "sales": sales}))
    return pd.concat(frames, ignore_index=True)


def test_many_series_use_their_known_future_features():
    frame = shop_frame()
    spec = ForecastSpec("day", "sales", 7, ("shop",), ("promotion", "price"))
    cutoff = frame["day"].max() - pd.Timedelta(days=7)
    history, future = frame[frame["day"] <= cutoff], frame[frame["day"] > cutoff]
    ahead = future.assign(sales=np.nan)  # the future's rows come with the data: their known features are known
    model = forecasting.fit(pd.concat([history, ahead], ignore_index=True), spec, ("lightgbm", "seasonal-naive"))
    assert model.chosen == "lightgbm"
    forecast = model.predict(future)
    naive = forecasting.fit(history, spec, ("seasonal-naive",)).predict(future)
    assert np.mean(np.abs(forecast - future["sales"])) < 0.5 * np.mean(np.abs(naive - future["sales"]))
    promoted = future["promotion"].to_numpy() == 1
    no_promotion = model.predict(future.assign(promotion=0.0))
    assert (forecast[promoted] > no_promotion[promoted]).all()  # the flag is used, not ignored
    upcoming = model.forecast().merge(future, on=["day", "shop"], suffixes=("", "_given"))
    assert len(upcoming) == 4 * 7 and set(upcoming["shop"]) == {f"shop{i}" for i in range(4)}
    assert np.allclose(upcoming["price"], upcoming["price_given"])
    assert np.allclose(np.sort(upcoming["forecast"]), np.sort(forecast))


def test_an_unseen_series_is_refused_with_the_reason():
    frame = shop_frame(2, 60)
    model = forecasting.fit(frame, ForecastSpec("day", "sales", 7, ("shop",), ("promotion", "price")),
                            ("seasonal-naive",))
    rows = pd.DataFrame({"day": [pd.Timestamp("2024-03-01")], "shop": ["shop9"], "promotion": [0.0],
                         "price": [10.0]})
    with pytest.raises(ForecastError, match="series 'shop9' has no history in training"):
        model.predict(rows)


def test_a_row_without_its_known_features_is_refused():
    frame = shop_frame(2, 60)
    model = forecasting.fit(frame, ForecastSpec("day", "sales", 7, ("shop",), ("promotion", "price")),
                            ("seasonal-naive",))
    rows = pd.DataFrame({"day": [pd.Timestamp("2024-03-01")], "shop": ["shop1"], "promotion": [np.nan],
                         "price": [10.0]})
    with pytest.raises(ForecastError, match=r"row 0 lacks known feature\(s\) promotion"):
        model.predict(rows)
    with pytest.raises(ForecastError, match="price missing"):
        model.predict(rows.drop(columns="price"))


def test_a_series_crossing_zero_is_forecast_without_its_logarithm():
    frame = monthly_frame(48).assign(sales=lambda f: f["sales"] - 120)
    model = forecasting.fit(frame, SPEC)
    assert not any("log" in name for name in model.scores)
    assert np.isfinite(model.forecast()["forecast"]).all()


def test_harmonic_regression_follows_a_fractional_cycle():
    """Weeks do not fit a year: the waves follow 52.18 weeks where a lag of 52 drifts."""
    t = np.arange(300)
    cycle = 365.25 / 7
    y = 50 + 0.1 * t + 10 * np.sin(2 * np.pi * t / cycle)
    forecast = forecasting.harmonic(y[:287], cycle, 13)
    assert np.max(np.abs(forecast - y[287:])) < 0.01
    naive = forecasting.seasonal_naive(y[:287], 52, 13)
    assert np.mean(np.abs(naive - y[287:])) > 1.0
