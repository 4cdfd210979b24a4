"""`gemini_tf.lite.Predictor`: run an exported .tflite file like the SavedModel."""

from gemini_tf.export.tflite import Predictor

__all__ = ["Predictor"]
