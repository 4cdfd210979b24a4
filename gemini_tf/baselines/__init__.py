"""Peers and baselines that gemini_tf is measured against, trained on the same data."""
