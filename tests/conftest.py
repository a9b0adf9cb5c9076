"""Fixtures shared by the restore tests (library and CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pconv_cli.checkpoint import save_checkpoint
from pconv_cli.core import PConvUNet, UNetConfig


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight 3-layer, width-8 model: restoring needs a real model, not a good one."""
    config = UNetConfig(depth=3, width=8)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, config, PConvUNet(config).state_dict())
    return path
