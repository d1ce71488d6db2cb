"""User mistakes: the CLI prints their one-line message and exits 2, never a traceback."""


class UserError(Exception):
    """Bad input from the user; the message is one line naming what to fix."""


class ConfigError(UserError, ValueError):
    """A config file (or a flag overriding it) that does not validate."""


class StoreError(UserError):
    """A tracking store that cannot be used: an unreachable server, an unknown URI scheme."""


class ReportError(UserError):
    """A comparison asked of what the store does not hold: an unknown experiment, run, key or
    metric."""
