"""`WarmupCosineDecay`: linear warmup, then cosine decay, with no conditionals in the graph.

The same values as `keras.optimizers.schedules.CosineDecay(initial_learning_rate=0,
warmup_target=peak, ...)`, computed with `where`/`clip` instead of two `cond`s.
It matters because Keras's AdamW reads the learning rate once per variable (for
weight decay): with CosineDecay the train step of a 250-variable model held
about 500 conditionals, whose functions made tracing it seconds slower and
ran every step. Branch-free scalar arithmetic on the same input is merged
into one copy by Grappler's common-subexpression elimination.
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="gemini_tf")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """0 -> `peak` linearly over `warmup_steps`, then cosine decay to `alpha` x `peak` over `decay_steps`.

    Args:
        peak: the learning rate at the end of the warmup.
        warmup_steps: steps of linear warmup (at least 1).
        decay_steps: steps of cosine decay after the warmup (at least 1).
        alpha: the final rate as a fraction of `peak`.
    """

    def __init__(self, peak: float, warmup_steps: int, decay_steps: int, alpha: float = 0.0):
        super().__init__()
        if warmup_steps < 1 or decay_steps < 1:
            raise ValueError(f"warmup_steps and decay_steps must be at least 1, got {warmup_steps}, {decay_steps}.")
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.alpha = alpha

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warming = self.peak * step / self.warmup_steps
        progress = ops.clip((step - self.warmup_steps) / self.decay_steps, 0.0, 1.0)
        decayed = self.peak * ((1.0 - self.alpha) * 0.5 * (1.0 + ops.cos(math.pi * progress)) + self.alpha)
        return ops.where(step < self.warmup_steps, warming, decayed)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
        }
