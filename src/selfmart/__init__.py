"""selfmart: the back office for chains of unmanned self-service supermarkets."""

__version__ = "0.1.0"
