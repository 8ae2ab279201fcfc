"""Edge Vision Kit: the library behind the notebooks and the `kit` CLI."""

__version__ = "0.1.0"
