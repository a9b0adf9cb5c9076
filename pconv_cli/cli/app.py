"""The Typer application object; command modules register themselves on it."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from .. import __version__
from .common import console, debug_from_environment, state

DEBUG_FLAG = "--debug"


class _PconvGroup(TyperGroup):
    """Accepts ``--debug`` anywhere on the command line, not only before the command.

    Users add it when a command has just failed, usually by appending it to that command; a
    root option would otherwise be rejected there as unknown. Everything after ``--`` is left
    alone (it may be a file name).
    """

    def parse_args(self, ctx, args: list[str]) -> list[str]:  # noqa: ANN001 - click's Context
        end = args.index("--") if "--" in args else len(args)
        # Set on every invocation: one process may run several (tests, embedding programs).
        state.debug = debug_from_environment() or DEBUG_FLAG in args[:end]
        args = [a for a in args[:end] if a != DEBUG_FLAG] + args[end:]
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="pconv",
    cls=_PconvGroup,
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
    debug: bool = typer.Option(
        False, DEBUG_FLAG, help="Show full tracebacks on errors (also accepted after the command)."
    ),
) -> None:
    state.debug = state.debug or debug
