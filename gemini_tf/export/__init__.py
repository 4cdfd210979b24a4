"""Deployment: SavedModel for TF Serving, TFLite for devices."""
