"""Deribit market-data recorder."""

__version__ = "0.1.0"
