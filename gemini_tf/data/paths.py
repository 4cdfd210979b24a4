"""Where real data lives: an explicit path, or `$GEMINI_TF_DATA/<name>`.

Real datasets are never shipped with the package; a fresh machine has only
the embedded Shapes generator.
"""

from __future__ import annotations

import os

ENV_VAR = "GEMINI_TF_DATA"


def data_dir(name: str, path: str | None = None) -> str:
    """`path` if given, else `$GEMINI_TF_DATA/name`; a clear error when neither exists."""
    if path is None:
        root = os.environ.get(ENV_VAR)
        if not root:
            raise FileNotFoundError(
                f"No path given for {name} and {ENV_VAR} is not set; pass the folder "
                f"or set {ENV_VAR} to the folder that holds {name}/."
            )
        path = os.path.join(root, name)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{name} data folder not found: {path}")
    return path
