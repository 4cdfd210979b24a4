"""`gemini_tf.lite.Predictor` / `Captioner`: run an exported .tflite file like the SavedModel."""

from gemini_tf.export.tflite import Captioner, Predictor

__all__ = ["Captioner", "Predictor"]
