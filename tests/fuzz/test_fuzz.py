"""The fuzz suite: a few thousand hostile cases against `vos-service serve` (a child process) over
real gRPC, with the shipped model and embedded Redis; see runner.py for what is sent and required."""

from __future__ import annotations

import asyncio

import pytest

from tests.fuzz.runner import COUNTS, SERVER_ENV, run
from tests.fuzz.server import ServerProcess


@pytest.fixture(scope="module")
def report():
    with ServerProcess(env=SERVER_ENV) as server:
        out = asyncio.run(run(server, seed=1, counts=COUNTS))
        out["log_tail"] = server.log()[-4000:]
    return out


def test_thousands_of_hostile_cases_ran(report):
    assert report["total_cases"] >= 2000, report["cases"]
    assert set(report["cases"]) >= {"open", "frames", "frames_calls", "indices", "prompts", "unary", "oversized",
                                    "many_streams", "reconnect"}


def test_the_process_never_died(report):
    assert report["alive"], report["log_tail"]


def test_every_call_ended_with_a_documented_status_or_drop_reason(report):
    assert report["violations"] == [], report["violations"][:20]


def test_bad_input_was_refused_not_just_tolerated(report):
    """The cases reached the checks: each category saw refusals, and valid frames still got results."""
    out = report["outcomes"]
    assert out["open"]["INVALID_ARGUMENT"] > 0 and out["open"]["RESOURCE_EXHAUSTED"] > 0 and out["open"]["OK"] > 0
    assert out["frames"]["drop:invalid"] > 0 and out["frames"]["result"] > 0
    assert out["prompts"]["drop:invalid"] > 0 and out["prompts"]["result"] > 0
    assert out["oversized"] == {"RESOURCE_EXHAUSTED": COUNTS["oversized"]}
    assert out["many_streams"]["RESOURCE_EXHAUSTED"] > 0
    assert out["reconnect"] == {"OK": COUNTS["reconnect"]}


def test_the_normal_stream_alongside_got_everything_and_redis_equals_an_unfuzzed_run(report):
    normal = report["normal"]
    assert normal["results"] == list(range(COUNTS["normal_frames"])) == normal["reference_results"]
    assert normal["redis_equal"], normal
