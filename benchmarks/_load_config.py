"""Constants shared by service_load.py's modules (the camera client, the service probe, the report).

Kept apart so that those modules need not import each other for them.
"""

from __future__ import annotations

from pathlib import Path

# the script the camera clients run in (`service_load.py --_client PARAMS`)
SCRIPT = Path(__file__).resolve().with_name("service_load.py")
CLICK_XY = (640.0, 360.0)  # the dog on the 1280x720 clip (tests/api/harness.py)
ENGINE_STAGES = ("memory_attention", "mask_decode", "memory_encode")  # per stream step; "encode" per batch
CLEAN = 0.1  # a run is "uncontended" if other processes used <= 10 % of the machine's CPU during it
