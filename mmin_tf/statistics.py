"""Summaries over runs and the paired t-test the paper applies to them (Table 5).

Runs are identified by a key (in experiments: `(fold, seed)`); a paired test compares two models
on the runs both have, pairing the same key, as the paper's T-test over folds and repeated runs.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Hashable, Mapping, Optional, Sequence

import numpy as np
from scipy import stats as scipy_stats


@dataclasses.dataclass(frozen=True)
class PairedTest:
    """A two-sided paired t-test of `values - reference` over paired runs.

    Attributes:
        num_pairs: runs present in both.
        mean_difference: mean of the paired differences (None without pairs).
        statistic: the t statistic (None with fewer than two pairs or when undefined).
        p_value: two-sided p-value (None with fewer than two pairs or when undefined, e.g. all
            differences zero).
    """

    num_pairs: int
    mean_difference: Optional[float]
    statistic: Optional[float]
    p_value: Optional[float]


def _finite_or_none(value) -> Optional[float]:
    value = float(value)
    return None if math.isnan(value) else value


def paired_t_test(values: Mapping[Hashable, float], reference: Mapping[Hashable, float]) -> PairedTest:
    """Paired t-test (`scipy.stats.ttest_rel`, two-sided) of `values` against `reference`.

    Args:
        values, reference: run key -> metric. Runs are paired by key; keys present in only one
            of them are left out (`num_pairs` counts the pairs).
    """
    keys = sorted(set(values) & set(reference))
    if not keys:
        return PairedTest(0, None, None, None)
    a = np.array([values[key] for key in keys], np.float64)
    b = np.array([reference[key] for key in keys], np.float64)
    mean_difference = float(np.mean(a - b))
    if len(keys) < 2:
        return PairedTest(len(keys), mean_difference, None, None)
    with warnings.catch_warnings():
        # Identical or constant differences: scipy warns and returns nan (or t = inf, p = 0).
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy_stats.ttest_rel(a, b)
    return PairedTest(len(keys), mean_difference, _finite_or_none(result.statistic), _finite_or_none(result.pvalue))


def summarize(values: Sequence[float]) -> dict:
    """`{"mean", "std", "values"}`: std is the sample standard deviation (ddof 1), None for one value."""
    if len(values) == 0:
        raise ValueError("Cannot summarize an empty list of values")
    array = np.asarray(values, np.float64)
    return {
        "mean": float(array.mean()),
        "std": float(array.std(ddof=1)) if len(array) > 1 else None,
        "values": [float(value) for value in array],
    }
