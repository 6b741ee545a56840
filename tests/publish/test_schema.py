"""The wire format: field names, string encoding, and decoding from what redis-py returns."""

from __future__ import annotations

import json

import pytest

from tests.publish.conftest import make_masklet
from vos_service.publish import EVENTS_KEY, EventMessage, EventType, MaskletMessage, ObjectMasklet, masklets_key


def test_masklet_fields_follow_the_documented_schema():
    msg = MaskletMessage("cam-7", 12, (
        ObjectMasklet(1, {"size": [4, 6], "counts": b"PPYo0"}, score=9.5, iou=0.93, box=(1, 2, 3, 4), revision=1),
        ObjectMasklet(2, {"size": [4, 6], "counts": "6"}, visible=False, revision=3),
    ), capture_ts=1.5)
    assert msg.key == "vos:cam-7:masklets" == masklets_key("cam-7")
    fields = msg.to_fields()
    assert set(fields) == {"stream_id", "frame_index", "capture_ts", "revision", "objects"}
    assert all(isinstance(v, str) for v in fields.values())
    assert fields["stream_id"] == "cam-7" and fields["frame_index"] == "12"
    assert fields["capture_ts"] == "1.5"
    assert fields["revision"] == "3"  # the max over objects
    objects = json.loads(fields["objects"])
    assert objects[0] == {"obj_id": 1, "score": 9.5, "visible": True, "iou": 0.93, "box": [1, 2, 3, 4],
                          "revision": 1, "rle": {"size": [4, 6], "counts": "PPYo0"}}
    assert objects[1]["score"] is None and objects[1]["box"] is None and objects[1]["visible"] is False


@pytest.mark.parametrize("i", [0, 1, 7, 10])
def test_masklet_round_trips_from_str_and_bytes(i):
    msg = make_masklet(i)
    fields = msg.to_fields()
    assert MaskletMessage.from_fields(fields) == msg
    as_bytes = {k.encode(): v.encode() for k, v in fields.items()}  # what redis-py returns by default
    assert MaskletMessage.from_fields(as_bytes) == msg


def test_masklet_without_objects_and_timestamp():
    msg = MaskletMessage("s", 0)
    fields = msg.to_fields()
    assert fields["capture_ts"] == "" and fields["objects"] == "[]" and fields["revision"] == "0"
    assert MaskletMessage.from_fields(fields) == msg


def test_non_finite_numbers_are_refused_at_encode_time():
    msg = MaskletMessage("s", 0, (ObjectMasklet(1, {"size": [1, 1], "counts": "0"}, score=float("nan")),))
    with pytest.raises(ValueError, match="finite"):
        msg.to_fields()


def test_event_round_trip_and_optional_fields():
    ev = EventMessage("correction_applied", "cam-1", ts=1700000000.25, obj_id=3, frame_index=40,
                      detail={"revision": 2, "reprocessed_frames": 5})
    assert ev.type is EventType.CORRECTION_APPLIED and ev.key == EVENTS_KEY == "vos:events"
    fields = ev.to_fields()
    assert fields == {"type": "correction_applied", "stream_id": "cam-1", "obj_id": "3", "frame_index": "40",
                      "ts": "1700000000.25", "detail": '{"revision":2,"reprocessed_frames":5}'}
    assert EventMessage.from_fields({k.encode(): v.encode() for k, v in fields.items()}) == ev

    opened = EventMessage(EventType.STREAM_OPENED, "cam-2", ts=5.0)
    fields = opened.to_fields()
    assert fields["obj_id"] == "" and fields["frame_index"] == "" and fields["detail"] == "{}"
    assert EventMessage.from_fields(fields) == opened


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError):
        EventMessage("stream_exploded", "cam", ts=0.0)
    with pytest.raises(ValueError):
        masklets_key("")
    with pytest.raises(ValueError, match="frame_index"):
        MaskletMessage.from_fields({"stream_id": "s", "capture_ts": "", "revision": "0", "objects": "[]"})
