"""The evaluate and export commands load their heavy libraries only when they run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY_MODULES = ("torch", "torchvision", "onnx", "onnxruntime", "cv2", "skimage", "scipy",
                 "pyamg", "matplotlib", "lpips")


def _heavy_modules_after_importing(module: str) -> list[str]:
    """Import one command module in a fresh interpreter, without the ``pconv_cli.cli`` package
    initialiser (which registers every command); which heavy modules came with it?"""
    code = (
        "import importlib, json, sys, types\n"
        "from pathlib import Path\n"
        "import pconv_cli\n"
        "package = types.ModuleType('pconv_cli.cli')\n"
        "package.__path__ = [str(Path(pconv_cli.__file__).parent / 'cli')]\n"
        "sys.modules['pconv_cli.cli'] = package\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["pconv_cli.cli.evaluate", "pconv_cli.cli.export"])
def test_command_module_imports_no_heavy_library(module):
    assert _heavy_modules_after_importing(module) == []
