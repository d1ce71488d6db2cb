"""Datasets: scikit-learn's bundled toy sets, synthetic 2-D problems, and CSV/NPZ/Parquet files.

`load_dataset` (in `loading`) returns deterministic train/val/test splits (`splits.Dataset`);
`builtin` holds the bundled and synthetic sets, `files` the readers and their validation.
"""

from mlpsuite.data.builtin import BUILTIN_NAMES, BUNDLED, SYNTHETIC
from mlpsuite.data.files import FILE_SUFFIXES
from mlpsuite.data.loading import check_dataset, dataset_task, load_dataset
from mlpsuite.data.splits import Dataset

__all__ = [
    "BUILTIN_NAMES",
    "BUNDLED",
    "FILE_SUFFIXES",
    "SYNTHETIC",
    "Dataset",
    "check_dataset",
    "dataset_task",
    "load_dataset",
]
