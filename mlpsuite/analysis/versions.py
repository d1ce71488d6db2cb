"""Which library versions a grid's counted trials ran with (DESIGN decision 14).

Each trial run carries `mlpsuite.version.<library>` tags. A grid whose trials were trained
partly before an upgrade is reused and compared as one, unless the reader is told: the
comparison names the version sets it mixes, and backend parity pairs trials that share the
versions of every library they have in common.
"""

from __future__ import annotations

import collections
from typing import Any

import pandas as pd

# Libraries first in a label: the ones whose upgrade changes numbers.
LEAD = ("keras", "tensorflow", "torch", "jax", "sklearn", "numpy", "mlpsuite")


def version_label(versions: dict[str, str]) -> str:
    """`keras 3.12.0 / jax 0.8.1 / numpy 2.3.5 / mlpsuite 0.9.0`: a trial's version set."""
    order = sorted(versions, key=lambda lib: (LEAD.index(lib) if lib in LEAD else len(LEAD), lib))
    return " / ".join(f"{lib} {versions[lib]}" for lib in order)


def parse_label(label: str) -> dict[str, str]:
    """A versions label back into `{library: version}`: "keras 3.10 / jax 0.6" -> {"keras":
    "3.10", "jax": "0.6"}; "" -> {}."""
    return dict(part.rsplit(" ", 1) for part in label.split(" / ")) if label else {}


def mixed_libraries(frame: pd.DataFrame) -> list[str]:
    """The libraries recorded with more than one version among the counted trials."""
    seen: dict[str, set[str]] = collections.defaultdict(set)
    for label in _counted(frame)["versions"]:
        for lib, version in parse_label(label).items():
            seen[lib].add(version)
    return sorted(lib for lib, versions in seen.items() if len(versions) > 1)


def version_sets(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each version set of the counted trials, with its backends and how many trials ran with it."""
    counted = _counted(frame)
    if counted.empty:
        return []
    grouped = counted.groupby("versions", sort=False)
    rows: list[dict[str, Any]] = [
        {
            "versions": label or "(not recorded)",
            "backends": sorted(set(group["backend"])),
            "trials": len(group),
        }
        for label, group in grouped
    ]
    return sorted(rows, key=lambda row: -row["trials"])


def same_shared_versions(labels: list[str]) -> bool:
    """Whether runs with these version labels agree on every library they all recorded."""
    parsed = [parse_label(label) for label in labels]
    shared = set.intersection(*(set(versions) for versions in parsed)) if parsed else set()
    return all(len({versions[lib] for versions in parsed}) == 1 for lib in shared)


def version_line(frame: pd.DataFrame) -> str:
    """One line for the terminal and the description; it leads them when versions are mixed."""
    sets = version_sets(frame)
    if not sets:
        return ""
    listed = "; ".join(f"{row['versions']}: {row['trials']} trials" for row in sets)
    mixed = mixed_libraries(frame)
    if not mixed:
        return f"Versions: {listed}."
    return (
        f"Mixed library versions (of {', '.join(mixed)}): {listed}. Backend parity pairs only "
        "trials of one version set; run with --reuse same-versions to retrain the others with the "
        "installed ones."
    )


def _counted(frame: pd.DataFrame) -> pd.DataFrame:
    if "versions" not in frame:  # no trial run yet
        return pd.DataFrame(columns=["versions", "backend"])
    return frame[frame["status"] == "FINISHED"]
