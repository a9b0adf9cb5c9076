"""Shared CLI helpers: consoles, the debug switch and library-error handling."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import PconvError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def choices(name: str, values: Iterable[str]) -> type[Enum]:
    """A Typer choice type whose members are the library's own tuple of names, so that the
    CLI never keeps a copy that could drift from what the library accepts."""
    return Enum(name, {value: value for value in values}, type=str)  # type: ignore[return-value]


def examples(*lines: tuple[str, str]) -> str:
    """A command's ``--help`` epilog: (command line, what it does) pairs, one paragraph each."""
    body = "\n\n".join(f"[dim]{escape(what)}:[/]\n[bold cyan]{escape(command)}[/]"
                         for command, what in lines)
    return f"[bold]Examples[/]\n\n{body}"


def debug_from_environment() -> bool:
    """``PCONV_DEBUG=1`` (any non-empty value) asks for tracebacks, as ``--debug`` does."""
    return bool(os.environ.get("PCONV_DEBUG"))


@dataclass
class _State:
    debug: bool = debug_from_environment()


state = _State()


def handle_errors(func: F) -> F:
    """Turn library errors into one red line and exit 1 (a traceback with ``--debug``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PconvError as exc:
            if state.debug:
                raise
            # escape: "[...]" in a message (a pip extra, a file name) is not rich markup
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            if state.debug:
                raise
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
