"""The ``indiflow`` console script (also ``python -m indiflow``): ``train``, ``restore`` and
``evaluate``.

This package is the only place in indiflow that parses command lines or maps names (solvers,
grids, metrics) onto library objects; every verb is a thin layer over the library API.
"""

from indiflow.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
