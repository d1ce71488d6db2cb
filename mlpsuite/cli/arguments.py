"""What the commands share: a parser whose errors are one line, the flag types, `--tracking-uri`,
the exit codes, naming the store and its experiments in messages, and the command name that
works from here in the commands they print to paste."""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import shutil
import sys
from pathlib import Path

from mlpsuite.errors import ConfigError, ReportError, UserError
from mlpsuite.registry import ALLOWED_BACKENDS, BACKEND_ALIASES

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
# Flags are short and share their `--`: a looser match would offer `--format` for `--fast`.
FLAG_MATCH_CUTOFF = 0.8


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (exit 2), like every other user error, an
    unknown one with the flag it is closest to, and no flag taken by an abbreviation: argparse
    would read `--backend jax` as `--backends jax` without a word."""

    # The parser that parsed last: the command's own, whose flags a hint is drawn from.
    last_used: Parser | None = None

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):  # noqa: D102 (argparse's)
        Parser.last_used = self
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        """Exit 2 with `message` as one line naming `--help` (argparse prints the usage too)."""
        self.exit(
            2, f"{self.prog}: error: {message}{self._hint(message)} (see {self.prog} --help)\n"
        )

    def _hint(self, message: str) -> str:
        """The hint for the first unknown flag of `message` close to one of this parser's or
        of the command just parsed: `; did you mean '--backends'?`; else ""."""
        prefix = "unrecognized arguments: "
        if not message.startswith(prefix):
            return ""
        flags = [word.split("=")[0] for word in message[len(prefix) :].split()]
        command = Parser.last_used if Parser.last_used is not None else self
        known = sorted(
            {
                flag
                for parser in {self, command}
                for action in parser._actions
                for flag in action.option_strings
                if flag.startswith("--")
            }
        )
        for flag in flags:
            if flag.startswith("--"):
                match = difflib.get_close_matches(flag, known, n=1, cutoff=FLAG_MATCH_CUTOFF)
                if match:
                    return f"; did you mean {match[0]!r}?"
        return ""


def add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    """Add `--tracking-uri` to `parser`: the store, default `$MLFLOW_TRACKING_URI`, else
    ./mlruns."""
    parser.add_argument(
        "--tracking-uri",
        help="MLflow store (default: $MLFLOW_TRACKING_URI, "
        "else sqlite:///mlruns/mlflow.db); http:// servers work too",
    )


def experiment_name(text: str) -> str:
    """An argparse type: the experiment name as given, refusing an empty one."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected an experiment name, got an empty one")
    return text


def backends_list(text: str) -> str:
    """An argparse type: a comma-separated list of backend names or aliases ("tf,jax"), as given;
    an unknown name is an error naming the allowed ones."""
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name.lower() not in BACKEND_ALIASES]
    if unknown or not text.strip():
        raise argparse.ArgumentTypeError(
            f"unknown backend {(unknown or [text])[0]!r}; allowed: "
            f"{ALLOWED_BACKENDS}, comma-separated"
        )
    return text


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0 (digits only)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return value


def shown_uri(uri: str) -> str:
    """The store's URI as messages show it (`mlpsuite.tracking.shown_uri`, imported on use)."""
    from mlpsuite.tracking import shown_uri

    return shown_uri(uri)


def command_name() -> str:
    """How to run this `mlpsuite` from here, for commands printed to paste: `mlpsuite` when that
    name on PATH is this interpreter's own console script, else that script's path (relative
    when under the current folder: `.venv/bin/mlpsuite` after `make run`, whose PATH lacks the
    venv), else `python -m mlpsuite.cli` with this interpreter. Quoted for a POSIX shell."""
    # Not resolved: a venv's python is a link to the base interpreter, its scripts are beside it.
    own = shutil.which("mlpsuite", path=str(Path(sys.executable).parent))
    if own is None:
        return f"{shlex.quote(sys.executable or 'python3')} -m mlpsuite.cli"
    found = shutil.which("mlpsuite")
    if found is not None and os.path.samefile(found, own):
        return "mlpsuite"
    script = Path(own).absolute()
    try:
        shown = str(script.relative_to(Path.cwd()))
    except (ValueError, OSError):  # not under it, or the current folder is gone
        shown = str(script)
    # A name without a slash is looked up on PATH, where this script is not: `./mlpsuite`.
    return shlex.quote(shown if "/" in shown else f"./{shown}")


def experiment_id(tracker, name: str, said: str) -> str:
    """The id of experiment `name`; a ConfigError starting with `said` listing the store's own."""
    found = tracker.find_experiment(name)
    if found is None:
        known = ", ".join(tracker.experiment_names()) or "(none)"
        raise ConfigError(
            f"{said}: no such experiment in {shown_uri(tracker.uri)}; experiments: {known}"
        )
    return found


def in_flag_words(error: UserError) -> str:
    """The error's one line as the CLI's user reads it: a `ReportError` about one parameter of
    `mlpsuite.compare` names its flag (`metric='x': ...` -> `--metric x: ...`)."""
    if isinstance(error, ReportError) and error.parameter:
        flag = "--" + error.parameter.replace("_", "-")
        shown = f" {error.value}" if error.value else ""
        return f"{flag}{shown}: {error.reason}"
    return str(error)
