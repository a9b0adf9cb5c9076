"""Self-describing checkpoints: round trip, refusal of unsafe or damaged files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from pconv_cli import __version__
from pconv_cli.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from pconv_cli.core import PConvUNet, UNetConfig
from pconv_cli.errors import CheckpointError
from pconv_cli.inference import load_inpainter

TINY = UNetConfig(depth=3, width=8)


def trained_tiny_net(seed: int = 0) -> PConvUNet:
    """A tiny net whose weights and BN statistics differ from a fresh one's."""
    torch.manual_seed(seed)
    model = PConvUNet(TINY).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    image = torch.rand(2, 3, 32, 32)
    mask = (torch.rand(2, 1, 32, 32) > 0.3).float()
    (model(image, mask) - image).abs().mean().backward()
    optimizer.step()
    return model.eval()


@pytest.fixture
def core_checkpoint(tmp_path) -> tuple[Path, PConvUNet]:
    model = trained_tiny_net()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model.config, model.state_dict(), train={"step": 12, "phase": "initial"})
    return path, model


def write_payload(path: Path, **changes) -> None:
    model = PConvUNet(TINY)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "pconv_version": __version__,
               "model_config": TINY.to_dict(), "model": model.state_dict(), "train": {}}
    payload.update(changes)
    torch.save(payload, path)


def test_round_trip_restores_config_weights_and_outputs(core_checkpoint):
    path, model = core_checkpoint
    image = torch.rand(1, 3, 32, 32)
    mask = (torch.rand(1, 1, 32, 32) > 0.5).float()

    loaded = load_model(path)

    assert loaded.config == model.config
    assert not loaded.training
    expected_state = model.state_dict()
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, expected_state[name]), name
    with torch.no_grad():
        assert torch.equal(loaded(image, mask), model(image, mask))


def test_round_trip_keeps_training_state_and_version(core_checkpoint):
    path, _ = core_checkpoint

    checkpoint = load_checkpoint(path)

    assert checkpoint.train == {"step": 12, "phase": "initial"}
    assert checkpoint.pconv_version == __version__


def test_optimizer_state_survives_the_round_trip(tmp_path):
    model = trained_tiny_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    (model.train()(torch.rand(2, 3, 16, 16), torch.ones(2, 1, 16, 16))).mean().backward()
    optimizer.step()
    path = tmp_path / "resume.pt"
    rng = torch.get_rng_state()
    save_checkpoint(path, model.config, model.state_dict(),
                    train={"optimizer": optimizer.state_dict(), "rng": rng})

    train = load_checkpoint(path).train
    restored = torch.optim.Adam(PConvUNet(TINY).parameters(), lr=1e-3)
    restored.load_state_dict(train["optimizer"])

    assert torch.equal(train["rng"], rng)
    first = optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(restored.state_dict()["state"][0]["exp_avg"], first)


def test_checkpoint_is_plain_data_loadable_with_weights_only(core_checkpoint):
    path, model = core_checkpoint

    payload = torch.load(path, weights_only=True)

    assert payload["format"] == FORMAT and payload["format_version"] == FORMAT_VERSION
    assert UNetConfig.from_dict(payload["model_config"]) == model.config


def test_half_checkpoint_stores_fp16_and_loads_as_fp32(tmp_path):
    model = trained_tiny_net()
    path = tmp_path / "half.pt"
    save_checkpoint(path, model.config, model.state_dict(), half=True)

    stored = torch.load(path, weights_only=True)["model"]
    loaded = load_model(path)

    weight = "encoder.0.conv.weight"
    assert stored[weight].dtype == torch.float16
    assert loaded.state_dict()[weight].dtype == torch.float32
    assert torch.equal(loaded.state_dict()[weight], model.state_dict()[weight].half().float())
    assert stored["encoder.1.bn.num_batches_tracked"].dtype == torch.int64


def test_half_checkpoint_is_smaller(tmp_path):
    model = trained_tiny_net()
    save_checkpoint(tmp_path / "full.pt", model.config, model.state_dict())
    save_checkpoint(tmp_path / "half.pt", model.config, model.state_dict(), half=True)

    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size


def test_load_model_puts_the_model_on_the_requested_device(core_checkpoint):
    path, _ = core_checkpoint

    model = load_model(path, device="cpu")

    assert all(p.device.type == "cpu" for p in model.parameters())


def test_torch_pickle_with_code_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "evil.pt"
    write_payload(path, train={"hook": Payload()})

    with pytest.raises(CheckpointError, match="refused to load") as info:
        load_checkpoint(path)

    assert not marker.exists()
    assert "\n" not in str(info.value) and "mkdir" in str(info.value)


def test_plain_pickle_with_code_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format": FORMAT, "hook": Payload()}, protocol=2))

    with pytest.raises(CheckpointError):
        load_checkpoint(path)

    assert not marker.exists()


def test_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")


@pytest.mark.parametrize(
    "content",
    [b"", b"not a checkpoint\n", bytes(range(256)) * 8, "half"],
    ids=["empty", "text", "binary", "truncated"],
)
def test_damaged_file_is_a_one_line_checkpoint_error(core_checkpoint, tmp_path, content):
    path, _ = core_checkpoint
    if content == "half":
        data = path.read_bytes()
        content = data[: len(data) // 2]
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(content)

    with pytest.raises(CheckpointError, match="truncated, corrupt or not a checkpoint") as info:
        load_checkpoint(damaged)

    assert "\n" not in str(info.value)


def test_torch_file_that_is_not_a_pconv_checkpoint_is_refused(tmp_path):
    path = tmp_path / "state_dict.pt"
    torch.save(PConvUNet(TINY).state_dict(), path)

    with pytest.raises(CheckpointError, match="not a pconv checkpoint"):
        load_checkpoint(path)


def test_newer_format_version_asks_to_upgrade(tmp_path):
    path = tmp_path / "future.pt"
    write_payload(path, format_version=FORMAT_VERSION + 1)

    with pytest.raises(CheckpointError, match="upgrade pconv"):
        load_checkpoint(path)


def test_unknown_model_setting_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "unknown.pt"
    write_payload(path, model_config={**TINY.to_dict(), "attention_heads": 4})

    with pytest.raises(CheckpointError, match="invalid model config"):
        load_checkpoint(path)


def test_invalid_model_setting_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "invalid.pt"
    write_payload(path, model_config={**TINY.to_dict(), "depth": 0})

    with pytest.raises(CheckpointError, match="invalid model config"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config_are_a_one_line_checkpoint_error(tmp_path):
    path = tmp_path / "mismatch.pt"
    write_payload(path, model=PConvUNet(UNetConfig(depth=3, width=4)).state_dict())

    with pytest.raises(CheckpointError, match="do not fit its model config") as info:
        load_model(path)

    assert "\n" not in str(info.value)


def test_missing_weights_are_a_checkpoint_error(tmp_path):
    path = tmp_path / "empty-model.pt"
    write_payload(path, model=None)

    with pytest.raises(CheckpointError, match="no model weights"):
        load_checkpoint(path)


def test_failed_save_leaves_the_previous_checkpoint_and_no_temporary_file(core_checkpoint):
    path, model = core_checkpoint
    before = path.read_bytes()

    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises
        save_checkpoint(path, model.config, model.state_dict(), train={"bad": lambda: None})

    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert load_checkpoint(path).train["step"] == 12


def test_save_creates_missing_parent_folders(tmp_path):
    model = PConvUNet(TINY)
    path = tmp_path / "runs" / "a" / "last.pt"

    save_checkpoint(path, model.config, model.state_dict())

    assert load_checkpoint(path).model_config == TINY


def test_save_does_not_change_the_model(core_checkpoint, tmp_path):
    _, model = core_checkpoint
    before = {k: v.clone() for k, v in model.state_dict().items()}

    save_checkpoint(tmp_path / "again.pt", model.config, model.state_dict(), half=True)

    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.state_dict()["encoder.0.conv.weight"].dtype == torch.float32


def test_half_save_of_values_beyond_fp16_range_is_refused_and_writes_nothing(tmp_path):
    model = PConvUNet(TINY)
    state = model.state_dict()
    state["encoder.1.bn.running_var"] = torch.full_like(state["encoder.1.bn.running_var"], 1e6)
    path = tmp_path / "half.pt"

    with pytest.raises(CheckpointError, match="encoder.1.bn.running_var .*fp16 range"):
        save_checkpoint(path, model.config, state, half=True)

    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_a_detector_checkpoint_round_trips_and_says_what_it_holds(tmp_path):
    from pconv_cli.checkpoint import DETECTOR, INPAINTER, load_detector
    from pconv_cli.core.detector import DamageDetector, DetectorConfig

    config = DetectorConfig(depth=2, width=4)
    torch.manual_seed(0)
    detector = DamageDetector(config).eval()
    path = tmp_path / "detector.pt"
    save_checkpoint(path, config, detector.state_dict())
    ckpt = load_checkpoint(path)
    assert ckpt.kind == DETECTOR and ckpt.model_config == config
    rebuilt = load_detector(path)
    image = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(rebuilt(image), detector(image))
    with pytest.raises(CheckpointError, match="holds a damage detector"):
        load_model(path)
    with pytest.raises(CheckpointError, match="holds a damage detector"):
        load_inpainter(model=path)
    inpainter = tmp_path / "inpainter.pt"
    small = UNetConfig(depth=2, width=4)
    save_checkpoint(inpainter, small, PConvUNet(small).state_dict())
    assert load_checkpoint(inpainter).kind == INPAINTER
    with pytest.raises(CheckpointError, match="holds an inpainting model"):
        load_detector(inpainter)


def test_files_from_before_model_kinds_are_inpainters(tmp_path):
    path = tmp_path / "old.pt"
    config = UNetConfig(depth=2, width=4)
    save_checkpoint(path, config, PConvUNet(config).state_dict())
    payload = torch.load(path, weights_only=True)
    del payload["model_kind"]
    torch.save(payload, path)
    assert load_checkpoint(path).kind == "inpainter"
    assert isinstance(load_model(path), PConvUNet)
