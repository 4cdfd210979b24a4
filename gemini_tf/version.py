"""The package version, read by pyproject.toml and written into every bundle and export."""

__version__ = "0.9.0"
