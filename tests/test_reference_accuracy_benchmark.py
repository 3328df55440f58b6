"""benchmarks/reference_accuracy.py: its time-to-accuracy arithmetic."""

from tests.benchmark_loader import load_benchmark

reference_accuracy = load_benchmark("reference_accuracy")


def test_seconds_to_reach_sums_the_epochs_up_to_the_first_that_reaches_the_target():
    seconds = [10.0, 5.0, 5.0, 5.0]
    validation = [0.40, 0.55, 0.50, 0.60]
    assert reference_accuracy.seconds_to_reach(seconds, validation, 0.55) == 15.0
    assert reference_accuracy.seconds_to_reach(seconds, validation, 0.40) == 10.0
    assert reference_accuracy.seconds_to_reach(seconds, validation, 0.60) == 25.0
    assert reference_accuracy.seconds_to_reach(seconds, validation, 0.61) is None


def test_every_step_has_settings_and_the_six_conditions_regime_is_ours():
    settings = reference_accuracy._STEP_SETTINGS
    assert set(settings) == {"ours", "reference", "ours_unbucketed", "ours_all_conditions"}
    original_step, bucketed, mode = settings["ours_all_conditions"]
    assert not original_step and bucketed and mode.value == "all"
