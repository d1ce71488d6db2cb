"""User mistakes: the CLI prints their one-line message and exits 2, never a traceback."""


class UserError(Exception):
    """Bad input from the user; the message is one line naming what to fix."""


class ConfigError(UserError, ValueError):
    """A config file (or a flag overriding it) that does not validate."""


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
