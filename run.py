#!/usr/bin/env python
"""Entry point: ``python run.py --mode=... --conf=...`` (also installed as the ``chronon`` command)."""
from chronon_cli.cli import main

if __name__ == "__main__":
    main()
