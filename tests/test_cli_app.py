"""The ``pconv`` application itself: start-up cost, help pages, the ``--debug`` switch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pconv_cli.cli import app
from pconv_cli.errors import ConfigError

runner = CliRunner()
COMMANDS = ("gen-masks", "train", "evaluate", "export", "detect", "restore")
# Modules that take seconds to import; a help page or a typo must not wait for them.
HEAVY_MODULES = ("torch", "torchvision", "onnx", "onnxruntime", "cv2", "skimage", "scipy",
                 "pyamg", "matplotlib")


def _modules_loaded_by(args: list[str]) -> dict:
    """Run ``pconv ARGS`` in a fresh interpreter; which heavy modules did it import?"""
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from pconv_cli.cli import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        f"print(json.dumps({{'exit': result.exit_code, 'heavy': "
        f"[m for m in {HEAVY_MODULES!r} if m in sys.modules]}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--version"], ["--help"],
                                  *[[command, "--help"] for command in COMMANDS]],
                         ids=lambda a: " ".join(a))
def test_help_and_version_import_no_heavy_module(args):
    loaded = _modules_loaded_by(args)
    assert loaded["exit"] == 0
    assert loaded["heavy"] == []


def test_a_missing_input_folder_is_reported_without_loading_torch(tmp_path):
    missing = str(tmp_path / "no-such-folder")
    loaded = _modules_loaded_by(["restore", missing, str(tmp_path / "out")])
    assert loaded["exit"] != 0
    assert "torch" not in loaded["heavy"]


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_are_listed_without_a_value(command):
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    help_line = next(line for line in result.output.splitlines() if "--help" in line)
    assert "Show this message and exit." in help_line


@pytest.mark.parametrize("position", ["before", "after"])
def test_debug_shows_the_traceback_before_or_after_the_command(tmp_path, position):
    command = ["gen-masks", str(tmp_path), "--size", "3", "--count", "1"]
    args = ["--debug", *command] if position == "before" else [*command, "--debug"]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, ConfigError)


def test_without_debug_an_error_is_one_line_and_exit_1(tmp_path):
    runner.invoke(app, ["--debug", "gen-masks", str(tmp_path), "--size", "3", "--count", "1"])
    result = runner.invoke(app, ["gen-masks", str(tmp_path), "--size", "3", "--count", "1"])
    assert result.exit_code == 1
    assert not isinstance(result.exception, ConfigError)  # the earlier --debug did not stick
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")


def test_debug_after_a_double_dash_is_a_file_name_not_the_switch(tmp_path):
    result = runner.invoke(app, ["gen-masks", "--size", "3", "--count", "1", "--",
                                 "--debug"])
    assert result.exit_code == 1
    assert not isinstance(result.exception, ConfigError)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_page_has_examples_that_use_real_options(command):
    result = runner.invoke(app, [command, "--help"], terminal_width=400)
    assert result.exit_code == 0
    text = result.output
    assert "Examples" in text
    head, _, tail = text.partition("Examples")
    example_lines = [line.strip() for line in tail.splitlines()
                     if f"pconv_cli {command}" in line or f"pconv {command}" in line]
    assert len(example_lines) >= 2
    for line in example_lines:
        own_part = line.split(command, 1)[1]  # torchrun's options come before the command
        for token in own_part.split():
            if token.startswith("--"):
                assert token in head, f"{line!r} uses {token}, which {command} does not have"
