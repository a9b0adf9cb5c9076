"""The bundled default model: present, loadable, and no worse than its recorded figures."""

from __future__ import annotations

import json

import pytest
from default_model_guard import GUARD_FILE, model_digest, run

from pconv_cli.checkpoint import load_checkpoint
from pconv_cli.inference import DEFAULT_MODEL_PATH

PSNR_TOLERANCE_DB = 0.1
SSIM_TOLERANCE = 0.002


def test_default_model_is_bundled_small_and_self_describing() -> None:
    assert DEFAULT_MODEL_PATH.is_file(), "pconv_cli/weights/default.pt is missing"
    assert DEFAULT_MODEL_PATH.stat().st_size <= 30 * 2**20
    ckpt = load_checkpoint(DEFAULT_MODEL_PATH)
    assert ckpt.train.get("step", 0) > 0
    assert all(not v.is_floating_point() or v.dtype.itemsize == 2
               for v in ckpt.model_state.values()), "bundled weights are stored in fp16"


def test_guard_figures_belong_to_the_bundled_model() -> None:
    recorded = json.loads(GUARD_FILE.read_text())
    assert recorded["model_sha256"] == model_digest(DEFAULT_MODEL_PATH), (
        "the bundled model changed: run `python tests/default_model_guard.py --write`"
    )


@pytest.mark.slow
def test_default_model_scores_no_worse_than_recorded(tmp_path) -> None:
    recorded = json.loads(GUARD_FILE.read_text())["bands"]
    measured = run(tmp_path)["bands"]
    assert measured.keys() == recorded.keys()
    for band, figures in recorded.items():
        got = measured[band]
        assert got["n"] == figures["n"]
        assert got["psnr"] >= figures["psnr"] - PSNR_TOLERANCE_DB, (band, got, figures)
        assert got["ssim"] >= figures["ssim"] - SSIM_TOLERANCE, (band, got, figures)
