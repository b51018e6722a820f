"""When the AutoML search stops before its budget: a plateau in cross-validated log loss."""

from __future__ import annotations

from typing import Any

from shared.local.automl import plateaued


def trial(learner: str, at_s: float, loss: float | None) -> dict[str, Any]:
    return {"learner": learner, "at_s": at_s, "cv_loss": loss}


TRIALS = [trial("lgbm", 0.5, 0.30), trial("xgboost", 2.0, 0.25), trial("rf", 4.0, 0.26),
          trial("lgbm", 8.0, 0.20),  # the last real gain
          trial("xgboost", 12.0, 0.1995), trial("rf", 15.0, 0.1992)]  # gains under half a percent: noise


def test_it_waits_ten_seconds_after_the_last_real_gain_and_ignores_tiny_ones():
    assert not plateaued(TRIALS, 17.9)
    assert plateaued(TRIALS, 18.1)


def test_a_late_gain_buys_half_the_time_it_took():
    late = [*TRIALS, trial("lgbm", 40.0, 0.15)]
    assert not plateaued(late, 59.0) and plateaued(late, 60.5)


def test_it_never_stops_before_three_kinds_of_learner_or_any_scored_trial():
    two_kinds = [t for t in TRIALS if t["learner"] != "rf"]
    assert not plateaued(two_kinds, 100.0)
    assert not plateaued([trial("lgbm", 1.0, None), trial("rf", 1.0, None), trial("xgboost", 1.0, None)], 100.0)


def test_the_final_fit_of_the_best_so_far_is_its_trial_scaled_to_the_rows():
    from shared.local.automl import final_fit_s

    trials: list[dict[str, Any]] = [{"cv_loss": 0.30, "seconds": 10.0, "sample_size": 40_000},
                                    {"cv_loss": 0.20, "seconds": 4.0, "sample_size": 10_000},  # the best: 2 fits
                                    {"cv_loss": None, "seconds": 1.0, "sample_size": 10_000}]
    assert final_fit_s(trials, 160_000) == 4.0 / 2 * 16
    assert final_fit_s([], 160_000) == 0.0
