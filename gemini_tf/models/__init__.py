"""Encoders, fusion, heads and the Gemini model that wires them together."""
