"""gridmesh: the command line and the small shared kernel (strict configuration)."""

__version__ = "0.1.0"
