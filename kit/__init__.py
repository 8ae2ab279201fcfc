"""Edge Vision Kit: the library behind the notebooks and the `kit` CLI."""

from kit.core import __version__

__all__ = ["__version__"]
