"""User mistakes: the CLI prints their one-line message and exits 2, never a traceback (a
`ConfigError` of several problems: one line each)."""

from __future__ import annotations

from collections.abc import Sequence

MAX_PROBLEMS = 10  # a ConfigError's lines shown; then one line counting the rest


class UserError(Exception):
    """Bad input from the user; the message is one line naming what to fix."""


class ConfigError(UserError, ValueError):
    """A config file (or a flag overriding it) that does not validate: one line, or with
    `problems` every mistake of a file at once, one line each. Its message is the first
    MAX_PROBLEMS of them and, if there are more, a last line saying how many."""

    def __init__(self, message: str = "", problems: Sequence[str] = ()):
        self.problems = list(problems) or [message]
        shown = self.problems[:MAX_PROBLEMS]
        if len(self.problems) > MAX_PROBLEMS:
            more = len(self.problems) - MAX_PROBLEMS
            shown.append(f"... and {more} more problem{'s' if more > 1 else ''}")
        super().__init__("\n".join(shown))

    def __reduce__(self):
        return type(self), ("", self.problems)


class StoreError(UserError):
    """A tracking store that cannot be used: an unreachable server, an unknown URI scheme."""


class ReportError(UserError):
    """A comparison asked of what the store does not hold: an unknown experiment, run, key or
    metric. When one argument is wrong, `parameter` names it as `mlpsuite.compare` does
    (`metric`, `by`, `parent`, `where`, `nuisance`, `select_on`, `target`) and `value` is what
    was given; the message says it in Python's words, and the CLI in its flags'."""

    def __init__(self, reason: str, parameter: str | None = None, value: str = ""):
        self.reason, self.parameter, self.value = reason, parameter, value
        shown = f"={value!r}" if value else ""
        super().__init__(f"{parameter}{shown}: {reason}" if parameter else reason)
