"""Training: the fit loop (`loop`), what to learn from (`recipes`), and `train`, which joins them."""

from gemini_tf.training.loop import FitSettings, adamw, fit, get_strategy, learning_rate_schedule
from gemini_tf.training.recipes import MATCHING, recipe_for
from gemini_tf.training.train import train

__all__ = ["MATCHING", "FitSettings", "adamw", "fit", "get_strategy", "learning_rate_schedule", "recipe_for", "train"]
