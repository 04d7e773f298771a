"""ScanRefer accuracy on hand-made boxes: thresholds, unique/multiple accounting, no-target, oracle."""
import math

import numpy as np
import pytest

from w2r2_training.metrics import (
    grounding_accuracy,
    oracle_accuracy,
    oracle_ious,
    predicted_box_ious,
)

UNIT = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])


def shifted(dx: float) -> np.ndarray:
    """The unit cube moved by dx along x: IoU with UNIT is (1 - dx) / (1 + dx)."""
    return UNIT + np.array([dx, 0, 0, 0, 0, 0])


def test_iou_thresholds_on_shifted_cubes():
    # IoUs: 1.0, 0.667 (dx .2), 0.333 (dx .5), 0.176 (dx .7)
    pred = np.stack([shifted(0.0), shifted(0.2), shifted(0.5), shifted(0.7)])
    gt = np.stack([UNIT] * 4)
    ious = predicted_box_ious(pred, gt)
    np.testing.assert_allclose(ious, [1.0, 0.8 / 1.2, 0.5 / 1.5, 0.3 / 1.7])

    report = grounding_accuracy(pred, gt, is_multiple=np.zeros(4, bool))
    assert report.overall.count == 4
    assert report.overall.accuracy[0.25] == pytest.approx(3 / 4)
    assert report.overall.accuracy[0.5] == pytest.approx(2 / 4)


def test_iou_exactly_at_threshold_counts_as_correct():
    # dx = 0.6: IoU = 0.4 / 1.6 = 0.25 exactly.
    report = grounding_accuracy(shifted(0.6)[None], UNIT[None], is_multiple=np.array([False]))
    assert report.overall.accuracy[0.25] == 1.0
    assert report.overall.accuracy[0.5] == 0.0


def test_unique_and_multiple_are_counted_separately():
    pred = np.stack([shifted(0.0), shifted(0.7), shifted(0.0), shifted(0.2), shifted(0.9)])
    gt = np.stack([UNIT] * 5)
    multiple = np.array([False, False, True, True, True])
    report = grounding_accuracy(pred, gt, multiple)
    assert (report.unique.count, report.multiple.count, report.overall.count) == (2, 3, 5)
    assert report.unique.accuracy[0.5] == pytest.approx(1 / 2)
    assert report.multiple.accuracy[0.5] == pytest.approx(2 / 3)
    assert report.overall.accuracy[0.5] == pytest.approx(3 / 5)
    as_dict = report.as_dict()
    assert as_dict["multiple"] == {"count": 3, "acc@0.25": pytest.approx(2 / 3), "acc@0.5": pytest.approx(2 / 3)}


def test_no_target_prediction_is_wrong():
    pred = np.stack([np.full(6, np.nan), UNIT])
    report = grounding_accuracy(pred, np.stack([UNIT, UNIT]), np.array([False, True]))
    assert report.unique.accuracy[0.25] == 0.0
    assert report.multiple.accuracy[0.25] == 1.0
    assert report.overall.accuracy[0.25] == 0.5


def test_empty_split_reports_nan_not_zero():
    report = grounding_accuracy(UNIT[None], UNIT[None], np.array([False]))
    assert report.multiple.count == 0
    assert math.isnan(report.multiple.accuracy[0.5])


def test_oracle_takes_the_best_proposal():
    proposals = [
        np.stack([shifted(0.7), shifted(0.2)]),  # best IoU 0.667
        np.stack([shifted(0.5), shifted(3.0)]),  # best IoU 0.333
        np.zeros((0, 6)),  # no proposal at all
    ]
    gt = np.stack([UNIT] * 3)
    np.testing.assert_allclose(oracle_ious(proposals, gt), [0.8 / 1.2, 0.5 / 1.5, 0.0])
    report = oracle_accuracy(proposals, gt, np.array([True, True, False]))
    assert report.multiple.accuracy[0.25] == 1.0
    assert report.multiple.accuracy[0.5] == 0.5
    assert report.unique.accuracy[0.25] == 0.0


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="differ in shape"):
        predicted_box_ious(np.stack([UNIT, UNIT]), UNIT[None])
    with pytest.raises(ValueError, match="labels"):
        grounding_accuracy(UNIT[None], UNIT[None], np.array([True, False]))


def test_relation_accuracy_counts_each_relation_apart():
    from w2r2_training.evaluate import relation_accuracy

    normal = np.array([0.9, 0.3, 0.1, 0.6])
    ablated = np.array([0.0, 0.6, 0.0, 0.2])
    result = relation_accuracy(normal, ablated, ["nearest", "colour", "nearest", "colour"])
    assert list(result) == ["colour", "nearest"]
    assert result["nearest"].count == 2 and result["nearest"].normal == {0.25: 0.5, 0.5: 0.5}
    assert result["colour"].normal == {0.25: 1.0, 0.5: 0.5} and result["colour"].ablated == {0.25: 0.5, 0.5: 0.5}
    assert result["colour"].as_dict()["ablated"] == {"acc@0.25": 0.5, "acc@0.5": 0.5}
