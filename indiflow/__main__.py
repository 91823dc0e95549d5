"""``python -m indiflow``: the ``indiflow`` console script (works under ``torchrun -m``)."""

from indiflow.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
