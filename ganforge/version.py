"""The package version, in a module of its own: the trainer records it and `ganforge --version` prints it
without importing the package's API (ganforge/__init__.py imports api.py, which imports the trainer)."""
__version__ = "0.1.0"
