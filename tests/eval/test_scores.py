"""Per-sequence scoring and averaging, as the DAVIS 2017 semi-supervised toolkit does it."""

from __future__ import annotations

import numpy as np
import pytest

from vos_service.eval import EvalError, evaluate_sequence, summarize


def make_sequence(num_frames: int = 5, shape=(32, 32)) -> list[np.ndarray]:
    """Two objects: 1 moves right one pixel a frame, 2 stays put."""
    out = []
    for t in range(num_frames):
        m = np.zeros(shape, np.uint8)
        m[4:12, 2 + t:10 + t] = 1
        m[20:28, 20:28] = 2
        out.append(m)
    return out


def test_perfect_prediction_and_frames_scored():
    gt = make_sequence()
    s = evaluate_sequence(gt, gt, name="seq")
    assert s.frames == (1, 2, 3)  # first and last frames are not scored
    assert [o.object_id for o in s.objects] == [1, 2]
    assert s.j_mean == 1.0 and s.f_mean == 1.0 and s.jf_mean == 1.0
    assert all(o.j_recall == 1.0 and o.j_decay == 0.0 for o in s.objects)


def test_first_and_last_predictions_are_never_read():
    gt = make_sequence()
    pred = [None, *gt[1:-1], None]
    assert evaluate_sequence(pred, gt).jf_mean == 1.0
    with pytest.raises(EvalError):
        evaluate_sequence([None] * 5, gt)


def test_all_frames_when_asked():
    gt = make_sequence()
    pred = [np.zeros_like(gt[0])] + gt[1:]
    s = evaluate_sequence(pred, gt, skip_first_last=False)
    assert s.frames == (0, 1, 2, 3, 4)
    assert s.objects[0].j[0] == 0.0 and s.objects[0].j_mean == pytest.approx(0.8)


def test_missing_object_scores_zero_and_ids_come_from_first_frame():
    gt = make_sequence()
    pred = [np.where(m == 2, 2, 0).astype(np.uint8) for m in gt]  # object 1 never predicted
    s = evaluate_sequence(pred, gt)
    assert s.objects[0].j_mean == 0.0 and s.objects[0].f_mean == 0.0
    assert s.objects[1].j_mean == 1.0
    assert s.j_mean == pytest.approx(0.5)


def test_unknown_predicted_id_is_an_error():
    gt = make_sequence()
    pred = [m.copy() for m in gt]
    pred[2][0, 0] = 3
    with pytest.raises(EvalError, match="id 3"):
        evaluate_sequence(pred, gt)


def test_object_absent_in_ground_truth_and_prediction_scores_one():
    gt = make_sequence()
    for m in gt[1:]:
        m[m == 1] = 0  # object 1 leaves after frame 0
    s = evaluate_sequence(gt, gt)
    assert s.objects[0].j_mean == 1.0 and s.objects[0].f_mean == 1.0


def test_void_label_in_ground_truth_is_ignored():
    gt = make_sequence()
    for m in gt:
        m[0:2, :] = 255
    pred = [np.where(g == 255, 1, g).astype(np.uint8) for g in gt]  # object 1 spills onto void
    s = evaluate_sequence(pred, gt)
    assert [o.object_id for o in s.objects] == [1, 2]
    assert s.objects[0].j_mean == 1.0


def test_shifted_prediction_known_j():
    gt = make_sequence()
    pred = [np.roll(m, 2, axis=1) for m in gt]  # 8x8 squares moved 2 px: IoU 48/80
    s = evaluate_sequence(pred, gt)
    assert s.j_mean == pytest.approx(48 / 80)


def test_shape_and_length_mismatch_are_errors():
    gt = make_sequence()
    with pytest.raises(EvalError):
        evaluate_sequence(gt[:4], gt)
    with pytest.raises(EvalError):
        evaluate_sequence([np.zeros((16, 16), np.uint8)] * 5, gt)
    with pytest.raises(EvalError, match="at least 3"):
        evaluate_sequence(gt[:2], gt[:2])


def test_summary_averages_over_objects_not_sequences():
    one = make_sequence()
    one = [np.where(m == 1, 1, 0).astype(np.uint8) for m in one]  # a single object
    a = evaluate_sequence(one, one, name="a")                      # 1 object, J = 1
    three = make_sequence()
    b = evaluate_sequence([np.zeros_like(m) for m in three], three, name="b")  # 2 objects, J = 0
    report = summarize([a, b])
    assert report.num_objects == 3
    assert report.j_mean == pytest.approx(1 / 3)  # not (1 + 0) / 2
    assert report.jf_mean == pytest.approx((report.j_mean + report.f_mean) / 2)
    d = report.to_dict()
    assert d["J&F-Mean"] == pytest.approx(report.jf_mean)
    assert [s["name"] for s in d["sequences"]] == ["a", "b"]
