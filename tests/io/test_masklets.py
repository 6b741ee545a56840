from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from vos_service.io.masklets import MaskletRecord, MaskletWriter, read_masklets
from vos_service.io.rle import encode_mask, mask_bbox


def _mask(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_round_trip_records_and_dicts(tmp_path: Path) -> None:
    h, w = 72, 128
    a = _mask(h, w, 10, 30, 20, 60)
    b = _mask(h, w, 40, 70, 0, 5)
    path = tmp_path / "masklets.jsonl"

    with MaskletWriter(path) as writer:
        writer.write(
            0,
            [MaskletRecord(obj_id=1, mask=a, score=np.float32(9.5), iou=0.91, box=mask_bbox(a))],
            pts=0.0,
        )
        writer.write(
            1,
            [
                {"obj_id": 1, "mask": a, "score": 8.0, "visible": True, "iou": np.float64(0.9), "box": mask_bbox(a)},
                {"obj_id": 2, "rle": encode_mask(b), "visible": False, "revision": 2},
            ],
            pts=1001 / 30000,
        )
        writer.write(2, [])  # nothing tracked: still one line

    lines = path.read_text().splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert set(first) == {"frame_index", "pts", "objects"}
    assert set(first["objects"][0]) == {"obj_id", "score", "visible", "iou", "box", "revision", "rle"}

    frames = list(read_masklets(path))
    assert [f.frame_index for f in frames] == [0, 1, 2]
    assert frames[1].pts == pytest.approx(1001 / 30000)
    assert frames[2].pts is None and frames[2].objects == ()

    r0 = frames[0].objects[0]
    assert (r0.obj_id, r0.score, r0.visible, r0.iou, r0.box, r0.revision) == (
        1, 9.5, True, pytest.approx(0.91), (20, 10, 60, 30), 0)
    np.testing.assert_array_equal(r0.mask, a)

    r1, r2 = frames[1].objects
    np.testing.assert_array_equal(r1.mask, a)
    assert (r2.obj_id, r2.score, r2.visible, r2.iou, r2.box, r2.revision) == (2, None, False, None, None, 2)
    assert r2.mask.dtype == np.bool_
    np.testing.assert_array_equal(r2.mask, b)


def test_writes_to_an_open_stream_and_reads_it_back() -> None:
    buf = io.StringIO()
    mask = _mask(5, 7, 1, 4, 2, 6)
    with MaskletWriter(buf) as writer:
        writer.write(3, [{"obj_id": 4, "mask": mask}])
    assert not buf.closed  # not ours to close
    buf.seek(0)
    (frame,) = list(read_masklets(buf))
    assert frame.frame_index == 3
    np.testing.assert_array_equal(frame.objects[0].mask, mask)


def test_rejects_bad_objects(tmp_path: Path) -> None:
    mask = np.zeros((4, 4), bool)
    with MaskletWriter(tmp_path / "bad.jsonl") as writer:
        with pytest.raises(ValueError, match="unknown"):
            writer.write(0, [{"obj_id": 1, "mask": mask, "colour": "red"}])
        with pytest.raises(ValueError, match="exactly one"):
            writer.write(0, [{"obj_id": 1}])
        with pytest.raises(ValueError):
            writer.write(0, [{"obj_id": 1, "mask": mask, "score": float("nan")}])
    assert (tmp_path / "bad.jsonl").read_text() == ""  # nothing half-written


def test_malformed_line_names_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"frame_index": 0, "pts": null, "objects": []}\n\n{"frame_index": 1\n')
    frames = read_masklets(path)
    assert next(frames).frame_index == 0
    with pytest.raises(ValueError, match=":3:"):
        next(frames)
