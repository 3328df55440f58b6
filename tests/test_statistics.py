"""The paired t-test wrapper (pairing by run key) and run summaries."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mmin_tf import statistics


def test_t_test_matches_the_textbook_formula():
    # Differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt(3)); with 2 degrees of
    # freedom the t distribution's CDF is 1/2 + t / (2 sqrt(2 + t^2)).
    values = {("1", 0): 0.6, ("2", 0): 0.7, ("3", 0): 0.8}
    reference = {("1", 0): 0.5, ("2", 0): 0.5, ("3", 0): 0.5}
    t = 0.2 / (0.1 / math.sqrt(3))
    p = 2 * (1 - (0.5 + t / (2 * math.sqrt(2 + t * t))))
    result = statistics.paired_t_test(values, reference)
    assert result.num_pairs == 3
    assert result.mean_difference == pytest.approx(0.2)
    assert result.statistic == pytest.approx(t)
    assert result.p_value == pytest.approx(p)


def test_runs_are_paired_by_key_not_by_position():
    keys = [("1", 0), ("1", 1), ("2", 0), ("2", 1), ("3", 0)]
    a = [0.61, 0.58, 0.66, 0.70, 0.52]
    b = [0.55, 0.57, 0.60, 0.61, 0.50]
    values = dict(zip(keys, a))
    reference = dict(reversed(list(zip(keys, b))))  # same pairs, other insertion order
    expected = scipy_stats.ttest_rel(a, b)
    result = statistics.paired_t_test(values, reference)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.statistic == pytest.approx(expected.statistic)
    by_position = scipy_stats.ttest_rel(a, list(reference.values()))
    assert result.p_value != pytest.approx(by_position.pvalue)


def test_runs_without_a_partner_are_left_out():
    values = {("1", 0): 0.61, ("2", 0): 0.66, ("3", 0): 0.52, ("4", 0): 0.99}
    reference = {("1", 0): 0.55, ("2", 0): 0.60, ("3", 0): 0.49, ("5", 0): 0.10}
    result = statistics.paired_t_test(values, reference)
    assert result.num_pairs == 3
    assert result.p_value == pytest.approx(scipy_stats.ttest_rel([0.61, 0.66, 0.52], [0.55, 0.60, 0.49]).pvalue)


def test_undefined_tests_give_none():
    one = statistics.paired_t_test({("1", 0): 0.6}, {("1", 0): 0.5})
    assert (one.num_pairs, one.statistic, one.p_value) == (1, None, None)
    assert one.mean_difference == pytest.approx(0.1)
    assert statistics.paired_t_test({("1", 0): 0.6}, {("2", 0): 0.5}) == statistics.PairedTest(0, None, None, None)
    same = {("1", 0): 0.6, ("2", 0): 0.7}
    assert statistics.paired_t_test(same, dict(same)).p_value is None


def test_summarize_uses_the_sample_standard_deviation():
    summary = statistics.summarize([0.5, 0.7])
    assert summary["mean"] == pytest.approx(0.6)
    assert summary["std"] == pytest.approx(math.sqrt(0.02))  # ((-0.1)^2 + 0.1^2) / (2 - 1)
    assert summary["values"] == [0.5, 0.7]
    assert statistics.summarize([0.5])["std"] is None
    assert np.isclose(statistics.summarize([1, 2, 3, 4])["std"], np.std([1, 2, 3, 4], ddof=1))
    with pytest.raises(ValueError, match="empty"):
        statistics.summarize([])
