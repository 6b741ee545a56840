"""The ship gate: what a candidate must do to replace the shipped model (train/ship.py ``gate``)."""

from __future__ import annotations

from vos_service.train.ship import gate

CHECKS = {"01_dog.mp4": ("the dog", 6), "04_coffee.mp4": ("the blue mug", 5), "02_cups.mp4": ("the right cup", 4)}


def evaluation(jf: float, dog: int, mug: int, cup: int) -> dict:
    """The parts of an evaluate_model result (a card's "eval") the gate reads."""
    held = {"01_dog.mp4": dog, "04_coffee.mp4": mug, "02_cups.mp4": cup}
    real = [{"video": v, "what": what, "held": held[v], "checks": n, "failed_frames": []}
            for v, (what, n) in CHECKS.items()]
    return {"heldout": {"J&F": jf}, "real_clicks": real}


SHIPPED = evaluation(0.563, dog=0, mug=5, cup=4)


def test_a_candidate_must_beat_the_held_out_jf():
    assert "does not beat the shipped 0.563" in gate(evaluation(0.563, 0, 5, 4), SHIPPED)
    assert "does not beat" in gate(evaluation(0.55, 6, 5, 4), SHIPPED)  # real clips cannot buy a J&F loss
    assert gate(evaluation(0.564, 0, 5, 4), SHIPPED) is None


def test_a_held_out_gain_that_holds_a_real_object_on_fewer_frames_is_refused():
    why = gate(evaluation(0.582, dog=0, mug=5, cup=2), SHIPPED)
    assert why == ("candidate J&F 0.582 beats the shipped 0.563 but holds the real clips' objects on 7 checked "
                   "frames, not 9 (the right cup 2 of 4 (shipped 4))")
    # counted over all checked frames: frames lost on one clip and won on another are even
    assert gate(evaluation(0.582, dog=2, mug=5, cup=2), SHIPPED) is None
    assert gate(evaluation(0.582, dog=1, mug=5, cup=4), SHIPPED) is None


def test_real_clips_count_only_where_both_were_measured():
    # the clips are not beside every checkout: then the gate is the held-out J&F alone
    candidate = evaluation(0.582, 0, 0, 0)
    assert gate(dict(candidate, real_clicks=None), SHIPPED) is None
    assert gate(candidate, dict(SHIPPED, real_clicks=None)) is None
    assert gate(dict(candidate, real_clicks=candidate["real_clicks"][:1]), SHIPPED) is None  # only the dog in both
