"""The Typer application object; command modules register themselves on it."""

from __future__ import annotations

import typer

from .. import __version__
from .common import console, state

app = typer.Typer(
    name="pconv",
    help="Batch image restoration with partial-convolution inpainting (Liu et al., ECCV 2018).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        console.print(f"pconv {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    state.debug = debug
