"""Task heads on the fused vector: image-text matching and classification."""

from __future__ import annotations

import keras


def task_head(task: str, num_classes: int = 2) -> keras.layers.Layer:
    """ITM or binary classification: 1 sigmoid unit; more classes: softmax.

    The layer is named after the task ("itm" or "classify") so exported
    outputs and metrics carry the task's name.
    """
    if task not in ("itm", "classify"):
        raise ValueError(f"Unknown task {task!r}; choose 'itm' or 'classify'.")
    if task == "itm" or num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name=task)
    return keras.layers.Dense(num_classes, activation="softmax", name=task)
