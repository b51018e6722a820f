"""The deployments' scoring script, run here as Azure ML's inference server runs it: ``init()``, then ``run(body)``.

The model folder is laid out as MLflow's sklearn flavour writes it, the way AutoML saves its best model
(``outputs/mlflow-model``: an ``MLmodel`` file naming ``model.pkl``, with the signature's column types). The
pipeline that stands in for AutoML's answers ``predict_proba`` with a DataFrame whose columns are the classes,
as AutoML's ``PipelineWithYTransformations`` does.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from shared.azure import entities

SIGNATURE = [{"type": "long", "name": "age"}, {"type": "string", "name": "job"},
             {"type": "boolean", "name": "loan"}]


class LabelledProbabilities:
    """AutoML's pipeline in miniature: probabilities come back as a DataFrame named by class."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def predict(self, table: pd.DataFrame) -> Any:
        return self.pipeline.predict(table)

    def predict_proba(self, table: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.pipeline.predict_proba(table), columns=self.pipeline.classes_)


def training_rows(count: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    age = rng.integers(18, 90, count)
    job = rng.choice(["admin.", "technician", "retired"], count)
    loan = rng.random(count) < 0.3
    y = np.where((age > 60) | (job == "retired"), "yes", "no")
    return pd.DataFrame({"age": age, "job": job, "loan": loan, "y": y})


def pipeline(regression: bool = False) -> Pipeline:
    columns = ColumnTransformer([("job", OneHotEncoder(handle_unknown="ignore"), ["job"])], remainder="passthrough")
    model = Pipeline([("features", columns), ("model", LinearRegression() if regression else LogisticRegression())])
    rows = training_rows()
    target = rows["age"] * 2.0 if regression else rows["y"]
    return model.fit(rows[["age", "job", "loan"]], target)


def saved(folder: Path, model: Any, signature: list[dict[str, str]] = SIGNATURE) -> Path:
    """An MLflow model folder, as the registered model's files reach the deployment under AZUREML_MODEL_DIR."""
    mlflow_model = folder / "mlflow-model"
    mlflow_model.mkdir(parents=True)
    (mlflow_model / "model.pkl").write_bytes(pickle.dumps(model))
    (mlflow_model / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: pickle\n"
        f"signature:\n  inputs: '{json.dumps(signature)}'\n", encoding="utf-8")
    return folder


@pytest.fixture()
def script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("score", entities.SCORING_CODE / entities.SCORING_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def request(rows: list[list[Any]]) -> str:
    return json.dumps({"input_data": {"columns": ["age", "job", "loan"], "index": list(range(len(rows))),
                                      "data": rows}})


def test_a_classifier_answers_labels_classes_and_probabilities(script: ModuleType, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    model = pipeline()
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path, LabelledProbabilities(model))))
    script.init()
    rows = [[70, "technician", False], [25, "admin.", True]]
    answer = script.run(request(rows))
    expected = pd.DataFrame(rows, columns=["age", "job", "loan"])
    assert answer["predictions"] == list(model.predict(expected))
    assert answer["classes"] == ["no", "yes"]
    assert np.allclose(answer["probabilities"], model.predict_proba(expected))
    assert json.loads(json.dumps(answer)) == answer  # the inference server sends it as JSON


def test_values_are_cast_to_the_signature_types_as_mlflow_would(script: ModuleType, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    model = pipeline()
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path, model)))
    script.init()
    as_text = script.run(request([["70", "technician", "false"]]))
    as_json = script.run(request([[70, "technician", False]]))
    assert as_text == as_json
    assert as_json["classes"] == ["no", "yes"]  # from the plain sklearn pipeline's classes_


def test_a_regression_model_answers_numbers_only(script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    model = pipeline(regression=True)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path, model)))
    script.init()
    answer = script.run(request([[40, "retired", False]]))
    assert set(answer) == {"predictions"} and answer["predictions"] == pytest.approx([80.0])


@pytest.mark.parametrize("body", ['["not", "an object"]', '{"input_data": {"columns": ["age"]}}', '{"data": []}'])
def test_a_body_of_another_shape_is_refused(script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            body: str):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path, pipeline())))
    script.init()
    with pytest.raises(ValueError, match="expected"):
        script.run(body)


@pytest.fixture()
def batch_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("batch_score", entities.SCORING_CODE / entities.BATCH_SCORING_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scored(batch_script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: Any, text: str,
           chunk_rows: int = 2, signature: list[dict[str, str]] = SIGNATURE
           ) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The batch deployment's script over one file, as Azure ML runs it: ``init()``, then ``run([path])``."""
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path / "model", model, signature)))
    (tmp_path / "out").mkdir()
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(tmp_path / "out"))
    monkeypatch.setenv("BATCH_CHUNK_ROWS", str(chunk_rows))
    (tmp_path / "drop.csv").write_text(text, encoding="utf-8")
    batch_script.init()
    batch_script.run([str(tmp_path / "drop.csv")])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    table = pd.read_csv(tmp_path / "out" / "scored.csv") if (tmp_path / "out" / "scored.csv").exists() else None
    return table, summary


def test_the_batch_script_writes_the_local_columns_and_summary_in_chunks(batch_script: ModuleType, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    from sklearn.impute import SimpleImputer

    columns = ColumnTransformer([("job", OneHotEncoder(handle_unknown="ignore"), ["job"]),
                                 ("age", SimpleImputer(), ["age"])], remainder="passthrough")
    rows = training_rows()
    model = Pipeline([("features", columns), ("model", LogisticRegression())]).fit(rows[["age", "job", "loan"]],
                                                                                   rows["y"])
    text = "age,job,loan,note\n70,technician,false,a\n25,admin.,true,b\nold,retired,false,c\n"
    table, summary = scored(batch_script, tmp_path, monkeypatch, LabelledProbabilities(model), text)
    assert table is not None and list(table.columns) == ["age", "job", "loan", "note", "prediction",
                                                         "probability_no", "probability_yes"]
    rows = pd.DataFrame([[70, "technician", False], [25, "admin.", True]], columns=["age", "job", "loan"])
    assert table["prediction"].tolist()[:2] == list(model.predict(rows))
    assert np.allclose(table[["probability_no", "probability_yes"]].to_numpy()[:2],
                       model.predict_proba(rows).round(6))
    assert summary["rows"] == 3 and summary["chunks"] == 2 and summary["values_not_numeric"] == 1  # "old"
    assert sum(summary["predictions"].values()) == 3


def test_the_batch_script_summarises_a_regression_and_reads_decimal_commas(batch_script: ModuleType,
                                                                          tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    text = "age;job;loan\n41,0;retired;false\n20;admin.;true\n"
    table, summary = scored(batch_script, tmp_path, monkeypatch, pipeline(regression=True), text)
    assert table is not None and list(table.columns) == ["age", "job", "loan", "prediction"]
    assert summary["values_not_numeric"] == 0 and summary["rows"] == 2
    assert set(summary["predictions"]) == {"min", "mean", "max"}
    assert summary["predictions"]["max"] == pytest.approx(82.0, abs=1e-3)  # 41,0 read as 41


def test_the_batch_script_reports_missing_columns_instead_of_scoring(batch_script: ModuleType, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    _, summary = scored(batch_script, tmp_path, monkeypatch, pipeline(), "age,job\n70,technician\n")
    assert summary == {"error": "the file lacks the model's column(s): loan"}


# ---- forecasting models ---------------------------------------------------------------------------------------

FORECAST_SIGNATURE = [{"type": "datetime", "name": "date"}, {"type": "string", "name": "store"},
                      {"type": "double", "name": "price"}]


class ForecastingPipelineStandIn:
    """A stand-in for AutoML's forecasting pipeline, since no machine here reaches Azure or installs AutoML's
    runtime. Shaped as azureml-examples use the real one: it names its ``time_column_name``, forecasts through
    ``forecast(X, y, ignore_data_errors=...)``, which answers a number for every row of X in the rows' order and the
    rows it read (indexed by time and series, so not in that order), fails on a time column that is not datetimes,
    and gives NaN for a row it cannot forecast when told to ignore data errors (else raises).

    As AutoML's (``auto-ml-forecasting-function-gap-local-inference.ipynb``), it takes context: rows of X whose y
    is a number are actual values, and the last of them is its series' forecast origin; rows whose y is NaN are
    forecast. Without context, the origin is the end of its training. Context counts only when it covers the gap
    from the end of training, month after month: otherwise the series' rows are not forecast. Its forecast: the
    value at the origin plus one per month ahead, up to its horizon. Each call's X and y are kept in ``calls``."""

    time_column_name = "date"

    def __init__(self, last: dict[str, tuple[str, float]], horizon: int) -> None:
        self.last = {store: (pd.Timestamp(when), value) for store, (when, value) in last.items()}
        self.horizon = horizon
        self.calls: list[tuple[pd.DataFrame, Any]] = []

    @staticmethod
    def months(start: pd.Timestamp, end: pd.Timestamp) -> int:
        return int((end.year - start.year) * 12 + end.month - start.month)

    def origins(self, X: pd.DataFrame, y: Any) -> dict[str, tuple[pd.Timestamp, float] | None]:
        """Per series, where its forecast starts: its last actual value, if its context covers the gap."""
        known = np.isfinite(np.asarray(y, dtype="float64")) if y is not None else np.zeros(len(X), dtype=bool)
        found: dict[str, tuple[pd.Timestamp, float] | None] = dict(self.last)
        for store, rows in X.assign(_y=np.asarray(y if y is not None else np.full(len(X), np.nan),
                                                  dtype="float64"))[known].groupby("store"):
            trained = self.last.get(str(store))
            times = sorted(rows[self.time_column_name])
            steps = [self.months(a, b) for a, b in zip([trained[0], *times] if trained else times, times,
                                                       strict=False)]
            covered = trained is not None and all(step == 1 for step in steps)
            latest = rows.sort_values(self.time_column_name).iloc[-1]
            found[str(store)] = (latest[self.time_column_name], float(latest["_y"])) if covered else None
        return found

    def forecast(self, X: pd.DataFrame, y: Any = None, ignore_data_errors: bool = False) -> tuple[Any, pd.DataFrame]:
        self.calls.append((X.copy(), None if y is None else np.asarray(y, dtype="float64").copy()))
        times = X[self.time_column_name]
        if not pd.api.types.is_datetime64_any_dtype(times):
            raise TypeError(f"time column {self.time_column_name!r} must hold datetimes, not {times.dtype}")
        given = np.asarray(y, dtype="float64") if y is not None else np.full(len(X), np.nan)
        origins = self.origins(X, y)
        values: list[float] = []
        for store, when, actual in zip(X["store"], times, given, strict=True):
            if np.isfinite(actual):  # a context row: its actual value
                values.append(float(actual))
                continue
            origin = origins.get(store)
            ahead = self.months(origin[0], when) if origin is not None else 0
            if origin is None or not 1 <= ahead <= self.horizon:
                if not ignore_data_errors:
                    raise ValueError(f"cannot forecast {store} at {when}")
                values.append(float("nan"))
            else:
                values.append(origin[1] + ahead)
        read = X.assign(_automl_target_col=values).set_index([self.time_column_name, "store"]).sort_index()
        return np.asarray(values), read

    def predict(self, X: pd.DataFrame) -> Any:
        raise NotImplementedError("forecasting models answer through forecast(), not predict()")


def forecaster() -> ForecastingPipelineStandIn:
    return ForecastingPipelineStandIn({"north": ("2024-01-31", 100.0), "south": ("2023-12-31", 40.0)}, horizon=3)


def forecast_request(rows: list[list[Any]]) -> str:
    return json.dumps({"input_data": {"columns": ["date", "store", "price"], "index": list(range(len(rows))),
                                      "data": rows}})


def test_a_forecasting_model_answers_one_number_per_future_row_in_the_rows_order(script: ModuleType, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path, forecaster(), FORECAST_SIGNATURE)))
    script.init()
    rows = [["2024-03-31", "north", 2.5], ["2024-01-31", "south", 1.0], ["2024-02-29T00:00:00+01:00", "north", 2.5],
            ["2024-02-29", "east", 3.0],  # a series the model never saw
            ["2024-09-30", "north", 2.5]]  # beyond its horizon
    answer = script.run(forecast_request(rows))
    assert answer == {"predictions": [102.0, 41.0, 101.0, None, None]}
    assert json.loads(json.dumps(answer, allow_nan=False)) == answer  # valid JSON: no NaN


def test_a_forecast_reads_its_time_column_as_datetimes_whatever_the_signature_says(script: ModuleType,
                                                                                   tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch):
    as_text = [{**c, "type": "string"} if c["name"] == "date" else c for c in FORECAST_SIGNATURE]
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path, forecaster(), as_text)))
    script.init()
    assert script.run(forecast_request([["2024-02-29 00:00", "north", None]])) == {"predictions": [101.0]}


def forecast_drop(script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
                  ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The batch script run over a dropped CSV of future rows, with the stand-in forecaster (in chunks of 2 rows,
    which it must not forecast apart): its scored table and summary."""
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path / "model", forecaster(), FORECAST_SIGNATURE)))
    (tmp_path / "out").mkdir()
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(tmp_path / "out"))
    monkeypatch.setenv("BATCH_CHUNK_ROWS", "2")
    (tmp_path / "drop.csv").write_text(text, encoding="utf-8")
    script.init()
    script.run([str(tmp_path / "drop.csv")])
    return pd.read_csv(tmp_path / "out" / "scored.csv"), json.loads((tmp_path / "out" / "summary.json").read_text())


def test_the_batch_script_scores_a_forecasting_model(batch_script: ModuleType, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    table, summary = forecast_drop(batch_script, tmp_path, monkeypatch, "date,store,price\n2024-02-29,north,2\n"
                                   "2024-03-31,north,2\n2024-01-31,south,1\n2024-01-31,east,1\n")
    assert table["prediction"].tolist()[:3] == [101.0, 102.0, 41.0] and pd.isna(table["prediction"][3])
    assert summary["rows"] == 4 and summary["predictions"] == {
        "min": 41.0, "mean": pytest.approx(81.333333), "max": 102.0, "not_finite": 1}
    # Read whole, not in chunks of 2: a series' future rows are forecast together. The row it could not forecast
    # is named, with its time.
    assert summary["chunks"] == 1
    assert summary["not_forecast"]["rows"] == 1 and summary["not_forecast"]["first"] == [
        {"row": 4, "date": "2024-01-31"}]
    assert "a series it was not trained on" in summary["not_forecast"]["reason"]


def test_the_batch_script_names_each_future_row_beyond_the_horizon(batch_script: ModuleType, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch):
    months = pd.date_range("2024-02-29", periods=14, freq="ME").strftime("%Y-%m-%d")
    text = "date,store,price\n" + "".join(f"{m},north,2\n" for m in months)
    table, summary = scored(batch_script, tmp_path, monkeypatch, forecaster(), text, 5, FORECAST_SIGNATURE)
    assert table is not None and table["prediction"].tolist()[:3] == [101.0, 102.0, 103.0]
    assert table["prediction"][3:].isna().all()  # the horizon is 3 months
    assert summary["rows"] == 14 and summary["predictions"]["not_finite"] == 11
    assert summary["not_forecast"]["rows"] == 11
    assert [r["row"] for r in summary["not_forecast"]["first"]] == list(range(4, 14))  # the first ten
    assert summary["not_forecast"]["first"][0]["date"] == months[3]


def test_the_gate_compares_no_model_that_left_a_held_out_row_without_a_number():
    from shared import metrics
    from shared.azure.deployment import Answers, _metric_of

    records: list[dict[str, str | None]] = [{"sales": "10"}, {"sales": "12"}, {"sales": "11"}]
    metric = metrics.resolve("normalized_mean_absolute_error")
    answered = Answers(np.array([[10.0], [12.5], [11.0]]), ())
    assert _metric_of(metric, answered, records, "sales") is not None
    assert _metric_of(metric, Answers(np.array([[10.0], [np.nan], [11.0]]), ()), records, "sales") is None


# ---- a forecaster's context: the rows training did not see, shipped with its deployment -------------------------

# north trained up to January, south up to December; the deployment ships what came after (the held-out periods)
CONTEXT = "date,store,price,sales\n2024-02-29,north,2,105\n2024-03-31,north,2,107\n2024-04-30,north,2,110\n" \
          "2024-01-31,south,1,44\n2024-02-29,south,1,43\n2024-03-31,south,1,45\n"


def deployed_code(folder: Path, context: str = CONTEXT) -> Path:
    """The deployment's code folder as ``shared.azure.forecast_context`` builds it: the scripts, the context."""
    folder.mkdir(parents=True)
    for name in (entities.SCORING_SCRIPT, entities.BATCH_SCORING_SCRIPT):
        (folder / name).write_bytes((entities.SCORING_CODE / name).read_bytes())
    (folder / "context.csv").write_text(context, encoding="utf-8")
    (folder / "context.json").write_text(json.dumps({"target": "sales", "time_column": "date", "series": ["store"],
                                                     "horizon": 3, "rows": context.count("\n") - 1}))
    return folder


def script_in(folder: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), folder / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def with_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """score.py as a forecaster's deployment runs it: beside its context, over the stand-in model."""
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path / "model", forecaster(), FORECAST_SIGNATURE)))
    module = script_in(deployed_code(tmp_path / "code"), entities.SCORING_SCRIPT)
    module.init()
    return module


def test_a_forecaster_answers_the_periods_after_the_uploaded_data_from_its_context(with_context: ModuleType,
                                                                                   script: ModuleType,
                                                                                   tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch):
    # The next three months after each series' last uploaded one, in no particular order.
    rows = [["2024-05-31", "north", 2], ["2024-04-30", "south", 1], ["2024-07-31", "north", 2],
            ["2024-06-30", "north", 2], ["2024-06-30", "south", 1], ["2024-05-31", "south", 1]]
    answer = with_context.run(forecast_request(rows))
    assert answer == {"predictions": [111.0, 46.0, 113.0, 112.0, 48.0, 47.0]}  # from April's 110, March's 45
    # The model got each series' context rows first, their actual values in y, and NaN for every requested row.
    [(X, y)] = with_context._model.calls
    assert len(X) == 6 + 6 and np.isnan(y[6:]).all()
    assert sorted(zip(X["store"][:6], X["date"][:6].dt.strftime("%Y-%m-%d"), y[:6], strict=True)) == [
        ("north", "2024-02-29", 105.0), ("north", "2024-03-31", 107.0), ("north", "2024-04-30", 110.0),
        ("south", "2024-01-31", 44.0), ("south", "2024-02-29", 43.0), ("south", "2024-03-31", 45.0)]
    # Without its context (the script alone), the same model reaches only its horizon past the end of training.
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path / "alone", forecaster(), FORECAST_SIGNATURE)))
    script.init()
    assert script.run(forecast_request(rows)) == {"predictions": [None] * 6}


def test_asked_for_the_held_out_periods_a_forecaster_gets_none_of_their_actual_values(with_context: ModuleType):
    # What the gate asks: the held-out periods themselves (north's Feb-Apr, south's Jan-Mar).
    held_out = [["2024-02-29", "north", 2], ["2024-01-31", "south", 1], ["2024-03-31", "north", 2],
                ["2024-04-30", "north", 2], ["2024-02-29", "south", 1], ["2024-03-31", "south", 1]]
    answer = with_context.run(forecast_request(held_out))
    # Forecast from where training ended (north's January 100, south's December 40), not the actual 105, 44, ...
    assert answer == {"predictions": [101.0, 41.0, 102.0, 103.0, 42.0, 43.0]}
    [(X, y)] = with_context._model.calls
    assert len(X) == 6 and np.isnan(y).all()  # no context row: every one of them is a time asked for
    # Asked from a held-out period on, a series gets only its context before it: north's April is not given.
    answer = with_context.run(forecast_request([["2024-04-30", "north", 2], ["2024-05-31", "north", 2]]))
    assert answer == {"predictions": [108.0, 109.0]}  # from March's actual 107
    X, y = with_context._model.calls[-1]
    assert X["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"]
    assert y[:2].tolist() == [105.0, 107.0] and np.isnan(y[2:]).all()


def test_a_context_that_does_not_cover_the_gap_from_training_gives_no_forecast(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved(tmp_path / "model", forecaster(), FORECAST_SIGNATURE)))
    gap = "date,store,price,sales\n2024-03-31,north,2,107\n2024-04-30,north,2,110\n"  # February is missing
    module = script_in(deployed_code(tmp_path / "code", gap), entities.SCORING_SCRIPT)
    module.init()
    assert module.run(forecast_request([["2024-05-31", "north", 2]])) == {"predictions": [None]}


def test_the_batch_script_forecasts_a_drop_of_future_rows_from_its_context(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch):
    batch = script_in(deployed_code(tmp_path / "code"), entities.BATCH_SCORING_SCRIPT)
    table, summary = forecast_drop(batch, tmp_path, monkeypatch, "date,store,price\n2024-05-31,north,2\n"
                                   "2024-06-30,north,2\n2024-04-30,south,1\n2024-08-31,north,2\n")
    assert list(table.columns) == ["date", "store", "price", "prediction"]
    assert table["prediction"].tolist()[:3] == [111.0, 112.0, 46.0] and pd.isna(table["prediction"][3])
    assert summary["rows"] == 4 and summary["not_forecast"]["first"] == [{"row": 4, "date": "2024-08-31"}]
