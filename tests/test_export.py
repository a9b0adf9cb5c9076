"""pconv.export and the ONNX side of pconv.inference."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from pconv_cli.checkpoint import save_checkpoint
from pconv_cli.cli import app
from pconv_cli.cli.export import DEFAULT_OPSET as CLI_DEFAULT_OPSET
from pconv_cli.core import PConvUNet, UNetConfig
from pconv_cli.core.detector import DamageDetector, DetectorConfig
from pconv_cli.errors import (
    CheckpointError,
    ConfigError,
    DeviceError,
    ExportError,
    WeightsUnavailableError,
)
from pconv_cli.export import (
    DEFAULT_OPSET,
    FP32_GOAL,
    CompositeModel,
    export_onnx,
    verification_inputs,
    verify_onnx,
)
from pconv_cli.inference import (
    DEFAULT_MODEL_PATH,
    OnnxInpainter,
    TorchInpainter,
    load_inpainter,
)

CONFIG = UNetConfig(depth=3, width=8)
runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    torch.manual_seed(0)
    save_checkpoint(path, CONFIG, PConvUNet(CONFIG).state_dict(),
                    train={"step": 1200, "phase": "train", "config": {"lr": 2e-4},
                           "optimizer": {"state": {}}})
    return path


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    return export_onnx(checkpoint, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def test_export_matches_torch_at_the_traced_size_and_a_second_size(exported):
    first, second = exported.checks
    assert (first.batch, first.height, first.width) == (1, 16, 16)
    assert second.batch == 2 and (second.height, second.width) != (16, 16)
    assert second.height != second.width
    assert all(c.finite and c.max_abs_diff <= 1e-4 for c in exported.checks)


def test_exported_model_agrees_with_torch_at_a_third_size(checkpoint, exported):
    ort_inpainter = OnnxInpainter(exported.path, device="cpu")
    torch_inpainter = TorchInpainter.from_checkpoint(checkpoint, device="cpu")
    rng = np.random.default_rng(1)
    images = rng.random((3, 40, 24), dtype=np.float32)[..., None].repeat(3, axis=3)
    valid = rng.random((3, 40, 24)) > 0.4
    a = ort_inpainter.inpaint(images, valid)
    b = torch_inpainter.inpaint(images, valid)
    assert a.shape == (3, 40, 24, 3)
    assert np.abs(a - b).max() <= 1e-4


def test_onnx_inpainter_pads_sizes_that_are_not_multiples(checkpoint, exported):
    ort_inpainter = OnnxInpainter(exported.path, device="cpu")
    torch_inpainter = TorchInpainter.from_checkpoint(checkpoint, device="cpu")
    images = np.random.default_rng(2).random((1, 21, 13, 3), dtype=np.float32)
    valid = np.ones((1, 21, 13), bool)
    valid[0, 5:12, 3:9] = False
    assert np.abs(ort_inpainter.inpaint(images, valid)
                  - torch_inpainter.inpaint(images, valid)).max() <= 1e-4


def test_known_pixels_of_the_onnx_composite_are_the_input(exported):
    image, mask = verification_inputs(2, 16, 24, seed=5)
    inpainter = OnnxInpainter(exported.path, device="cpu")
    out = inpainter.inpaint(image.transpose(0, 2, 3, 1), mask[:, 0] > 0.5)
    known = mask[:, 0] > 0.5
    assert np.array_equal(out[known], image.transpose(0, 2, 3, 1)[known])


def test_metadata_describes_the_model(exported):
    meta = {p.key: p.value for p in onnx.load(str(exported.path)).metadata_props}
    assert meta["depth"] == "3" and meta["multiple"] == "8" and meta["width"] == "8"
    assert meta["mask_convention"] == "1 = valid, 0 = hole"
    assert meta["value_range"] == "[0,1]"
    assert meta["pconv_version"]
    assert json.loads(meta["model_config"])["depth"] == 3
    train = json.loads(meta["train_config"])
    assert train == {"step": 1200, "phase": "train", "config": {"lr": 2e-4}}


def test_exported_graph_has_dynamic_batch_height_and_width(exported):
    graph = onnx.load(str(exported.path)).graph
    dims = [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] and dims[2] and dims[3]
    assert [i.name for i in graph.input] == ["image", "mask"]
    assert graph.output[0].name == "composite"


def test_fp16_export_is_finite_and_close_to_fp32_torch(checkpoint, tmp_path):
    result = export_onnx(checkpoint, tmp_path / "half.onnx", fp16=True)
    assert result.precision == "fp16"
    assert all(c.finite for c in result.checks)
    assert result.max_abs_diff < 5e-2
    weights = onnx.load(str(tmp_path / "half.onnx")).graph.initializer
    assert any(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)


def test_static_export_fixes_height_and_width_but_not_batch(checkpoint, tmp_path):
    result = export_onnx(checkpoint, tmp_path / "static.onnx", static_size=(16, 24))
    dims = onnx.load(str(result.path)).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and (dims[2].dim_value, dims[3].dim_value) == (16, 24)
    inpainter = OnnxInpainter(result.path, device="cpu")
    assert inpainter.fixed_size == (16, 24)
    smaller = inpainter.inpaint(np.zeros((2, 10, 20, 3), np.float32), np.ones((2, 10, 20), bool))
    assert smaller.shape == (2, 10, 20, 3)


def test_static_size_that_is_not_a_multiple_is_refused_with_the_nearest(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="--static 23x17: .* nearest valid size 24x16"):
        export_onnx(checkpoint, tmp_path / "bad.onnx", static_size=(17, 23))


def test_the_nearest_valid_size_is_the_networks_own(tmp_path):
    config = UNetConfig(depth=8, width=8)
    path = tmp_path / "deep.pt"
    save_checkpoint(path, config, PConvUNet(config).state_dict())
    # 640 lies halfway between 512 and 768: export and the network must name the same one.
    with pytest.raises(ConfigError, match="nearest valid size 768x256"):
        export_onnx(path, tmp_path / "deep.onnx", static_size=(300, 640))
    with pytest.raises(ConfigError, match="nearest valid size 256×768"):
        PConvUNet(config).check_size(300, 640)


def test_static_on_the_command_line_is_width_by_height(checkpoint, tmp_path):
    result = runner.invoke(app, ["export", str(checkpoint), "--onnx", str(tmp_path / "w.onnx"),
                                 "--static", "24x16"])
    assert result.exit_code == 0, result.output
    assert "sizes 24x16 (WxH)" in result.output
    dims = onnx.load(str(tmp_path / "w.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert (dims[2].dim_value, dims[3].dim_value) == (16, 24)  # N×3×H×W
    meta = OnnxInpainter(tmp_path / "w.onnx", device="cpu").metadata
    assert meta["static_size"] == "24x16"
    help_text = " ".join(runner.invoke(app, ["export", "--help"]).output.replace("│", " ").split())
    assert "--static WxH" in help_text and "640x256 = 640 wide, 256 high" in help_text


def test_the_command_line_default_opset_is_the_librarys():
    assert CLI_DEFAULT_OPSET == DEFAULT_OPSET


def test_failed_verification_raises_and_writes_nothing(checkpoint, tmp_path):
    with pytest.raises(ExportError, match="differs from torch"):
        export_onnx(checkpoint, tmp_path / "strict.onnx", tolerance=0.0)
    assert not (tmp_path / "strict.onnx").exists()
    assert list(tmp_path.iterdir()) == []


def test_verify_onnx_detects_a_model_that_computes_something_else(exported):
    torch.manual_seed(123)
    other = CompositeModel(PConvUNet(CONFIG).eval()).eval()
    checks, provider = verify_onnx(exported.path, other, [(1, 16, 16)])
    assert provider == "CPUExecutionProvider"
    assert checks[0].max_abs_diff > 1e-2


def test_corrupt_checkpoint_is_a_checkpoint_error(tmp_path):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        export_onnx(tmp_path / "broken.pt", tmp_path / "out.onnx")


# ----------------------------------------------------------------------- OnnxInpainter


def test_onnx_inpainter_reports_the_provider_actually_used(exported):
    inpainter = OnnxInpainter(exported.path, device="cpu")
    assert inpainter.session.get_providers()[0] == "CPUExecutionProvider"
    assert inpainter.backend == "onnxruntime CPUExecutionProvider, Poisson blend"
    assert inpainter.multiple == 8


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_onnx_device_cuda_without_a_gpu_is_a_device_error(exported):
    with pytest.raises(DeviceError, match="--device cuda"):
        OnnxInpainter(exported.path, device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_onnx_device_auto_without_a_gpu_runs_on_the_cpu(exported):
    assert OnnxInpainter(exported.path, device="auto").provider == "CPUExecutionProvider"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_onnx_device_cuda_uses_the_cuda_provider(exported):
    assert OnnxInpainter(exported.path, device="cuda").provider == "CUDAExecutionProvider"


def test_onnx_model_without_pconv_metadata_is_refused(exported, tmp_path):
    proto = onnx.load(str(exported.path))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "foreign.onnx"))
    with pytest.raises(CheckpointError, match="not a pconv ONNX model"):
        OnnxInpainter(tmp_path / "foreign.onnx", device="cpu")


def test_corrupt_onnx_file_is_a_checkpoint_error(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(CheckpointError, match="cannot load ONNX model"):
        OnnxInpainter(tmp_path / "broken.onnx", device="cpu")


# ----------------------------------------------------------------------- load_inpainter


def test_load_inpainter_picks_the_backend_from_the_arguments(checkpoint, exported):
    assert load_inpainter(model=checkpoint, device="cpu").backend == "torch cpu, Poisson blend"
    assert load_inpainter(onnx=exported.path, device="cpu").backend.startswith("onnxruntime")


def test_load_inpainter_refuses_both_model_and_onnx(checkpoint, exported):
    with pytest.raises(ConfigError, match="not both"):
        load_inpainter(model=checkpoint, onnx=exported.path)


@pytest.mark.skipif(DEFAULT_MODEL_PATH.is_file(), reason="the bundled model exists")
def test_load_inpainter_without_a_model_needs_the_bundled_one():
    with pytest.raises(WeightsUnavailableError, match="--model"):
        load_inpainter()


def test_a_missing_onnx_package_is_one_line_naming_what_to_install(checkpoint, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # the import fails, as if missing
    result = runner.invoke(app, ["export", str(checkpoint), "--onnx", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    assert "pip install onnx" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "m.onnx").exists()


# ------------------------------------------------------------------------ damage detectors


@pytest.fixture(scope="module")
def detector_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detector")
    torch.manual_seed(0)
    model = DamageDetector(DetectorConfig(depth=3, width=4))
    torch.nn.init.normal_(model.head.weight, std=1.0)  # outputs that vary with the input
    ckpt = folder / "detector.pt"
    save_checkpoint(ckpt, model.config, model.state_dict())
    return ckpt, export_onnx(ckpt, folder / "detector.onnx")


def test_detector_export_is_checked_at_two_sizes_and_batches(detector_export):
    _, result = detector_export
    assert result.kind == "detector"
    assert [(c.batch, c.height, c.width) for c in result.checks] == [(1, 16, 16), (2, 8, 24)]
    assert all(c.finite and c.max_abs_diff < FP32_GOAL for c in result.checks)


def test_detector_graph_takes_an_image_and_gives_dynamic_probabilities(detector_export):
    _, result = detector_export
    proto = onnx.load(str(result.path))
    assert [i.name for i in proto.graph.input] == ["image"]
    assert proto.graph.output[0].name == "damage"
    for value in (proto.graph.input[0], proto.graph.output[0]):
        dims = [d.dim_param for d in value.type.tensor_type.shape.dim]
        assert dims[0] and dims[2] and dims[3]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["model_kind"] == "detector" and meta["multiple"] == "8"
    assert int(meta["tile_margin"]) >= DetectorConfig(depth=3, width=4).receptive_radius()


def test_exported_detector_agrees_with_torch_at_a_third_size(detector_export):
    ckpt, result = detector_export
    from pconv_cli.checkpoint import load_detector
    from pconv_cli.detect import OnnxDetector

    model = load_detector(ckpt)
    image = np.random.default_rng(5).random((3, 3, 40, 72), dtype=np.float32)
    with torch.inference_mode():
        expected = torch.sigmoid(model(torch.from_numpy(image))).numpy()
    (got,) = OnnxDetector(result.path, "cpu").session.run(None, {"image": image})
    assert got.shape == (3, 1, 40, 72)
    assert np.abs(got - expected).max() < 1e-4


def test_an_exported_detector_is_not_taken_for_an_inpainter(detector_export):
    _, result = detector_export
    with pytest.raises(CheckpointError, match="holds a damage detector"):
        OnnxInpainter(result.path, "cpu")


@pytest.mark.parametrize("static", [None, (64, 96)])
def test_every_backend_keeps_the_inpainter_contract(checkpoint, tmp_path, static):
    """evaluate and restore read these attributes without fallbacks: every backend has them,
    with the meaning the contract gives (a static ONNX export reports its size)."""
    from pconv_cli.classical import CLASSICAL_METHODS, classical_inpainter
    from pconv_cli.inference import Inpainter, OnnxInpainter, TorchInpainter
    from pconv_cli.inpainter import BUILT_IN
    from pconv_cli.routing import RoutedInpainter

    onnx_path = export_onnx(checkpoint, tmp_path / "tiny.onnx", static_size=static).path
    torch_model = TorchInpainter.from_checkpoint(checkpoint, "cpu")
    onnx_model = OnnxInpainter(onnx_path, device="cpu")
    classical = [classical_inpainter(name) for name in CLASSICAL_METHODS
                 if name not in ("telea", "ns", "fsr", "fsr-best") or _has_cv2()]
    routed = RoutedInpainter(onnx_model, classical_inpainter("biharmonic"))
    for backend in [torch_model, onnx_model, routed, *classical]:
        assert isinstance(backend, Inpainter), backend
    assert (torch_model.source, onnx_model.source) == (str(checkpoint), str(onnx_path))
    assert torch_model.fixed_size is None and torch_model.batched
    assert onnx_model.fixed_size == static and routed.fixed_size == static
    assert routed.source == str(onnx_path) and routed.batched
    assert all(c.source == BUILT_IN and not c.batched and c.fixed_size is None
               and c.multiple == 1 and c.blend is None for c in classical)


def _has_cv2() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True
