"""Developer sessions; every one installs the package from pyproject.toml."""

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "pconv_cli", "tests", "benchmarks", "scripts", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Speed benchmarks: each prints ratios against a baseline measured in the same run."""
    session.install("-e", ".[test]")
    for script in sorted(__import__("pathlib").Path("benchmarks").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs)
