"""``pconv evaluate`` end to end: real photos, a real gen-masks folder, real checkpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data
from typer.testing import CliRunner

from pconv_cli.checkpoint import save_checkpoint
from pconv_cli.cli import app
from pconv_cli.core import PConvUNet, UNetConfig
from pconv_cli.inference import DEFAULT_MODEL_PATH
from pconv_cli.masks import MaskSetSpec, write_mask_set

runner = CliRunner()
PHOTOS = ("astronaut", "chelsea", "coffee")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    photos = root / "photos"
    photos.mkdir()
    for name in PHOTOS:
        Image.fromarray(getattr(data, name)()).resize((64, 64), Image.Resampling.LANCZOS).save(
            photos / f"{name}.png")
    masks = root / "masks"
    write_mask_set(masks, MaskSetSpec(size=(64, 64), per_band=1, borders=(True, False), seed=3))
    config = UNetConfig(depth=3, width=8)
    torch_model = root / "tiny.pt"
    save_checkpoint(torch_model, config, PConvUNet(config).state_dict())
    return {"root": root, "photos": photos, "masks": masks, "model": torch_model}


def run(files: dict[str, Path], *args: str):
    return runner.invoke(app, ["evaluate", "--images", str(files["photos"]), "--masks",
                               str(files["masks"]), "--workers", "1", *args])


def test_evaluate_prints_bands_side_by_side_and_writes_the_json(files, tmp_path):
    out = tmp_path / "r.json"
    result = run(files, "--model", str(files["model"]), "--method", "mean", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "(0.01,0.1]" in result.stdout and "no-border" in result.stdout
    assert "*" in result.stdout  # the best per band is marked
    doc = json.loads(out.read_text())
    assert list(doc["methods"]) == ["tiny", "mean"]
    assert doc["settings"]["band_source"] == "masks.csv"
    assert doc["settings"]["border_split"] is True
    assert doc["methods"]["mean"]["overall"]["n"] == 12


def test_out_writes_json_csv_markdown_plot_and_samples(files, tmp_path):
    pytest.importorskip("matplotlib", reason="the plot needs the plot extra")
    result = run(files, "--method", "mean,biharmonic", "--out", str(tmp_path / "out"),
                 "--samples", "1")
    assert result.exit_code == 0, result.output
    for name in ("report.json", "report.csv", "report.md", "report.png"):
        assert (tmp_path / "out" / name).is_file()
    assert len(list((tmp_path / "out/samples").glob("band_*.png"))) == 6


def test_an_unknown_method_is_one_line_and_exit_1(files):
    result = run(files, "--method", "mean,magic")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "unknown method 'magic'" in lines[0] and "biharmonic" in lines[0]


def test_a_bad_image_is_reported_and_exits_1_after_scoring_the_rest(files, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in files["photos"].iterdir():
        (photos / path.name).write_bytes(path.read_bytes())
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["evaluate", "--images", str(photos), "--masks",
                                 str(files["masks"]), "--method", "mean", "--pairs", "all",
                                 "--workers", "1", "--json", str(out)])
    assert result.exit_code == 1
    assert "broken.jpg" in result.stderr and "skipped" in result.stderr
    doc = json.loads(out.read_text())
    assert [Path(f["path"]).name for f in doc["failed"]] == ["broken.jpg"]
    assert doc["methods"]["mean"]["overall"]["n"] == 3 * 12


def test_samples_without_out_is_refused(files):
    result = run(files, "--method", "mean", "--samples", "2")
    assert result.exit_code == 1
    assert "--out" in result.stderr


def test_size_and_native_together_are_refused(files):
    result = run(files, "--method", "mean", "--size", "64", "--native")
    assert result.exit_code == 1
    assert "exclude each other" in result.stderr


def test_a_missing_opencv_names_what_to_install(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    result = run(files, "--method", "telea")
    assert result.exit_code == 1
    assert "pip install 'pconv[classical]'" in result.stderr


@pytest.mark.skipif(DEFAULT_MODEL_PATH.is_file(), reason="the default model is bundled")
def test_pconv_without_the_bundled_model_is_one_clear_line(files):
    result = run(files, "--method", "pconv")
    assert result.exit_code == 1
    assert "bundled default model is missing" in result.stderr


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="no default model bundled yet")
def test_pconv_scores_the_bundled_model(files, tmp_path):
    out = tmp_path / "r.json"
    result = run(files, "--method", "pconv", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "pconv" in json.loads(out.read_text())["methods"]


def test_an_onnx_export_scores_like_its_checkpoint(files, tmp_path):
    from pconv_cli.export import export_onnx

    onnx_path = tmp_path / "tiny.onnx"
    export_onnx(files["model"], onnx_path)
    out = tmp_path / "r.json"
    result = run(files, "--model", str(files["model"]), "--onnx", str(onnx_path), "--device",
                 "cpu", "--json", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    torch_scores = doc["methods"]["tiny.pt"]["overall"]
    onnx_scores = doc["methods"]["tiny.onnx"]["overall"]
    assert onnx_scores["l1"] == pytest.approx(torch_scores["l1"], abs=1e-3)
    assert np.isclose(onnx_scores["ssim"], torch_scores["ssim"], atol=1e-4)
    backends = {m["name"]: m["backend"] for m in doc["settings"]["methods"]}
    assert backends["tiny.onnx"].startswith("onnxruntime ")


def test_flips_and_blend_score_each_variant_of_a_model(files, tmp_path):
    out = tmp_path / "r.json"
    result = run(files, "--model", str(files["model"]), "--flips", "1,4", "--blend",
                 "poisson,none", "--device", "cpu", "--json", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    names = ["tiny", "tiny-noblend", "tiny-flips4", "tiny-flips4-noblend"]
    assert list(doc["methods"]) == names
    backends = {m["name"]: m["backend"] for m in doc["settings"]["methods"]}
    assert backends == {"tiny": "torch cpu, Poisson blend", "tiny-noblend": "torch cpu",
                        "tiny-flips4": "torch cpu, 4 flips, Poisson blend",
                        "tiny-flips4-noblend": "torch cpu, 4 flips"}
    l1 = [doc["methods"][n]["overall"]["l1"] for n in names]
    assert len(set(l1)) == 4  # every variant fills differently


@pytest.mark.parametrize("value", ["soft", ","])
def test_a_bad_blend_value_is_one_line_and_exit_1(files, value):
    result = run(files, "--model", str(files["model"]), "--blend", value)
    assert result.exit_code == 1
    assert "--blend" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("value", ["3", "two", ","])
def test_a_bad_flips_value_is_one_line_and_exit_1(files, value):
    result = run(files, "--model", str(files["model"]), "--flips", value)
    assert result.exit_code == 1
    assert "--flips" in result.output and "Traceback" not in result.output


def test_a_missing_onnx_runtime_is_one_line_naming_what_to_install(files, tmp_path,
                                                                    monkeypatch):
    from pconv_cli.export import export_onnx

    onnx_path = tmp_path / "tiny.onnx"
    export_onnx(files["model"], onnx_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # the import fails, as if missing
    result = run(files, "--onnx", str(onnx_path), "--device", "cpu")
    assert result.exit_code == 1
    assert "pip install onnxruntime" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="no default model bundled yet")
def test_without_a_method_the_bundled_model_and_the_classical_methods_are_scored(files,
                                                                                 tmp_path):
    out = tmp_path / "r.json"
    result = run(files, "--device", "cpu", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert list(json.loads(out.read_text())["methods"]) == ["pconv", "telea", "ns", "biharmonic"]
    assert result.stderr == ""  # no notice on the default path
    help_text = " ".join(run(files, "--help").output.replace("│", " ").split())
    assert "[default, when no --model or --onnx is given: pconv,telea,ns,biharmonic" in help_text


def test_lpips_is_off_by_default_and_says_nothing(files, tmp_path):
    out = tmp_path / "r.json"
    result = run(files, "--method", "mean", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no notice about LPIPS
    doc = json.loads(out.read_text())
    assert doc["settings"]["metrics"]["lpips"] == "not requested"
    assert "lpips" not in doc["methods"]["mean"]["overall"]


def test_lpips_without_its_package_is_one_line_naming_the_extra(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)  # import lpips now raises ImportError
    result = run(files, "--method", "mean", "--lpips")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: --lpips needs the lpips package, which is not installed: "
        "pip install 'pconv[lpips]'"]


def test_lpips_without_its_weights_is_one_line(files, tmp_path, monkeypatch):
    pytest.importorskip("lpips")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torchvision cache
    result = run(files, "--method", "mean", "--lpips")
    assert result.exit_code == 1
    assert "AlexNet weights are not on this machine" in result.stderr
    assert "Traceback" not in result.output


def test_lpips_is_scored_when_asked_for_and_available(files, tmp_path, monkeypatch):
    pytest.importorskip("lpips")
    import torch
    from torchvision.models import alexnet

    from pconv_cli.metrics import alexnet_weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # random trunk weights, checked loading
    alexnet_weights_path().parent.mkdir(parents=True)
    torch.save(alexnet(weights=None).state_dict(), alexnet_weights_path())
    out = tmp_path / "r.json"
    result = run(files, "--method", "mean", "--lpips", "--json", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["settings"]["metrics"]["lpips"] == "lpips v0.1 alex"
    assert doc["methods"]["mean"]["overall"]["lpips"] > 0


def test_named_pairs_score_each_kind_and_hole_width_inside_the_holes(tmp_path):
    from pconv_cli.damage import ThinHoleParams, thin_hole_mask
    from pconv_cli.imaging import save_mask

    images, masks = tmp_path / "images", tmp_path / "masks"
    layout = {"astronaut.png": "astronaut", "document/page.png": "page",
              "bw/camera.png": "camera"}
    for k, (rel, name) in enumerate(layout.items()):
        for folder in (images, masks):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        pixels = Image.fromarray(getattr(data, name)()).resize((80, 64))
        pixels.save(images / rel)
        holes = thin_hole_mask((64, 80), np.random.default_rng(k),
                               ThinHoleParams(line_width=(1.0, 8.0), count=(6, 10)))
        save_mask(masks / rel, ~holes)
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["evaluate", "--images", str(images), "--masks", str(masks),
                                 "--pairs", "named", "--native", "--bands", "0,1",
                                 "--method", "mean,ns", "--workers", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    for text in ("hole PSNR (dB)", "hole ℓ1 (%)", "holes <=2px", "kind document", "kind bw",
                 "kind photo"):
        assert text in result.stdout
    doc = json.loads(out.read_text())
    assert doc["settings"]["kinds"]["pairs"] == {"bw": 1, "document": 1, "photo": 1}
    assert doc["settings"]["pairing"] == "named"
    for method in ("mean", "ns"):
        assert doc["methods"][method]["widths"]["<=2px"]["n"] == 3
        overall = doc["methods"][method]["overall"]
        assert overall["hole_l1"] > overall["l1"]  # the error lives in the holes
    assert (doc["methods"]["ns"]["overall"]["hole_psnr"]
            > doc["methods"]["mean"]["overall"]["hole_psnr"])


def test_help_lists_fsr_and_the_named_pairing():
    result = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    assert "fsr-best" in result.stdout and "named:" in result.stdout


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="no default model bundled yet")
def test_auto_at_thin_width_0_scores_as_the_model_and_at_a_huge_one_as_the_classical_method(
        files, tmp_path):
    out = tmp_path / "r.json"
    result = run(files, "--method", "pconv,biharmonic,auto:biharmonic", "--thin-width",
                 "0,1000,10", "--device", "cpu", "--json", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    names = ["pconv", "biharmonic", "auto:biharmonic-w0", "auto:biharmonic-w1000",
             "auto:biharmonic"]
    assert list(doc["methods"]) == names
    overall = {name: doc["methods"][name]["overall"] for name in names}
    assert overall["auto:biharmonic-w0"] == overall["pconv"]
    assert overall["auto:biharmonic-w1000"] == overall["biharmonic"]
    backends = {m["name"]: m["backend"] for m in doc["settings"]["methods"]}
    assert backends["auto:biharmonic"].endswith("holes ≤ 10 px wide: biharmonic "
                                                f"(pconv biharmonic, scipy {scipy_version()} cpu)")


def scipy_version() -> str:
    import scipy

    return scipy.__version__


@pytest.mark.parametrize(("args", "message"), [
    (("--method", "auto:mean"), "the thin-hole method of auto must be one of"),
    (("--method", "auto", "--thin-width", "wide"), "--thin-width wide: give widths in pixels"),
    (("--method", "auto", "--thin-width", "-2"), "--thin-width -2: give a width in pixels"),
])
def test_a_bad_auto_method_or_thin_width_is_one_line_and_exit_1(files, args, message):
    result = run(files, *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_auto_without_opencv_contrib_routes_thin_holes_to_biharmonic(files, monkeypatch):
    from pconv_cli.evaluate import build_methods

    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip("no default model bundled yet")
    monkeypatch.setitem(sys.modules, "cv2", None)
    (method,) = build_methods(methods=["auto"], device="cpu")
    assert method.name == "auto" and method.thin.name == "biharmonic"
