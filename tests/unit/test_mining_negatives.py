"""The positive-aware negative filter (TopK-PercPos): candidates scoring above ratio x the positive's score go."""

from __future__ import annotations

import pytest

from retr.training.mining import Hit, MineConfig, negative_ceiling, sample_negatives

# d0 is the positive (score 10); d1/d2 score near it (likely unjudged positives), d3.. fall away.
HITS = [Hit("d0", 1, 10.0), Hit("d1", 2, 9.9), Hit("d2", 3, 9.6), Hit("d3", 4, 9.0), Hit("d4", 5, 8.0),
        Hit("d5", 6, 7.0), Hit("d6", 7, 6.0)]


def test_candidates_above_the_ratio_of_the_positive_score_are_dropped() -> None:
    cfg = MineConfig(k=10, rank_min=1, rank_max=10, negatives=4, max_negative_ratio=0.95)
    picked = sample_negatives(HITS, {"d0"}, cfg, "q")
    assert [h.id for h in picked] == ["d3", "d4", "d5", "d6"]  # d1 (9.9) and d2 (9.6) exceed 9.5
    assert sample_negatives(HITS, {"d0"}, MineConfig(k=10, rank_min=1, rank_max=10, negatives=5,
                                                     max_negative_ratio=0.95), "q") is None
    unfiltered = sample_negatives(HITS, {"d0"}, MineConfig(k=10, rank_min=1, rank_max=10, negatives=6), "q")
    assert {h.id for h in unfiltered} == {"d1", "d2", "d3", "d4", "d5", "d6"}


def test_the_best_positive_sets_the_ceiling_and_a_missing_one_sets_none() -> None:
    assert negative_ceiling(HITS, {"d0", "d4"}, 0.5) == 5.0
    assert negative_ceiling(HITS, {"elsewhere"}, 0.95) is None
    assert negative_ceiling(HITS, {"d0"}, None) is None


@pytest.mark.parametrize("ratio", [0, -0.1, 1.5])
def test_ratio_outside_the_unit_interval_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="max_negative_ratio"):
        MineConfig(max_negative_ratio=ratio)
