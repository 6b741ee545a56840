"""DAVIS-layout folders and the `vos-service eval` command, on small generated clips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from vos_service.cli import main
from vos_service.cli.exit_codes import ExitCode
from vos_service.eval import EvalError, evaluate_dirs, read_mask
from vos_service.synth import SynthOptions, generate_clip, write_davis, write_palette_png

OPTS = SynthOptions(real_patch_prob=0.0, real_background_prob=0.0, videos_dir=None)


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("davis")
    for seed in (3, 4):
        write_davis(generate_clip(seed, num_frames=8, size=(64, 80), num_objects=2, options=OPTS), root, f"s{seed}")
    return root


def test_palette_png_reads_as_indices(tmp_path):
    ids = np.zeros((8, 8), np.uint8)
    ids[2:4, 2:6] = 1
    ids[5:7, 1:3] = 2
    ids[0, 0] = 255
    write_palette_png(tmp_path / "m.png", ids)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), ids)
    # Why PIL and not OpenCV: IMREAD_UNCHANGED expands the palette to colours.
    assert cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED).ndim == 3


def test_rgb_mask_is_rejected(tmp_path):
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(EvalError, match="mode"):
        read_mask(tmp_path / "rgb.png")


def test_ground_truth_against_itself_is_perfect(davis_root):
    report = evaluate_dirs(davis_root / "Annotations", davis_root / "Annotations")
    assert [s.name for s in report.sequences] == ["s3", "s4"]
    assert report.num_objects == 4
    assert report.jf_mean == 1.0
    # A DAVIS root works as well as its Annotations folder.
    assert evaluate_dirs(davis_root, davis_root).jf_mean == 1.0


def test_missing_predictions(davis_root, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(davis_root / "Annotations", pred)
    for name in ("s3", "s4"):  # first and last frames are not scored: they may be absent
        (pred / name / "00000.png").unlink()
        (pred / name / "00007.png").unlink()
    assert evaluate_dirs(pred, davis_root).jf_mean == 1.0
    (pred / "s4" / "00003.png").unlink()
    with pytest.raises(EvalError, match="00003"):
        evaluate_dirs(pred, davis_root)


def _run_cli(*argv: str) -> int:
    return main(["eval", *argv])


def test_cli_prints_table_and_writes_json(davis_root, tmp_path, capsys):
    pred = tmp_path / "pred"
    for seq in ("s3", "s4"):  # the "repeat the first mask" baseline
        (pred / seq).mkdir(parents=True)
        first = read_mask(davis_root / "Annotations" / seq / "00000.png")
        for i in range(8):
            write_palette_png(pred / seq / f"{i:05d}.png", first)
    out = tmp_path / "report" / "r.json"
    assert _run_cli(str(pred), str(davis_root), "--json", str(out)) == 0
    text = capsys.readouterr().out
    assert "s3" in text and "s4" in text and "J&F-Mean" in text
    report = json.loads(out.read_text())
    assert report["num_objects"] == 4
    assert 0.0 <= report["J&F-Mean"] < 1.0
    assert report["J&F-Mean"] == pytest.approx((report["J-Mean"] + report["F-Mean"]) / 2)


def test_cli_reports_bad_input(tmp_path, capsys):
    assert _run_cli(str(tmp_path / "nope"), str(tmp_path)) == ExitCode.USAGE
    assert "error:" in capsys.readouterr().err
