"""The environment a grid runs in, as the record needs it: the installed versions of the
libraries a trial records (read from package metadata: no framework is imported), and a
`requirements.txt` for the parent run that pins everything installed, with the CPU and threads."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import sys

from mlpsuite import __version__

# The name a trial records a library under -> the distributions that install it.
DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "sklearn": ("scikit-learn",)}


@functools.cache  # read once per process: a grid asks for each run it might reuse
def installed_version(library: str) -> str | None:
    """The installed version of a library as trials record it ("sklearn", "tensorflow", ...),
    from package metadata; None when it is not installed."""
    if library == "mlpsuite":
        return __version__
    name = installed_distribution(library)
    return importlib.metadata.version(name) if name else None


def installed_distribution(library: str) -> str | None:
    """The installed distribution that brings `library` (tensorflow-cpu for tensorflow)."""
    for name in DISTRIBUTIONS.get(library, (library,)):
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        return name
    return None


def same_as_installed(versions: dict[str, str]) -> bool:
    """Whether every library a run recorded is installed here at the version it recorded."""
    return all(installed_version(library) == version for library, version in versions.items())


def requirements_text(threads_per_worker: int | None = None, jobs: int | None = None) -> str:
    """`pip freeze` of this environment (the local workers' too), headed by the machine."""
    # Each distribution's metadata parsed once (`dist.version` would parse it again: a third
    # of a second on every grid with something to run).
    headers = (dist.metadata for dist in importlib.metadata.distributions())
    pins = sorted(
        {f"{meta['Name']}=={meta['Version']}" for meta in headers if meta["Name"]}, key=str.lower
    )
    head = [
        "# the environment of this grid's coordinator and its local workers "
        f"(mlpsuite {__version__})",
        f"# python {platform.python_version()} on {platform.platform()}",
        f"# cpu: {cpu_model()}, {os.cpu_count()} cores"
        + (f"; {jobs} workers of {threads_per_worker} threads each" if jobs else ""),
        f"# {sys.executable}",
    ]
    return "\n".join(head + pins) + "\n"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else what `platform` says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
