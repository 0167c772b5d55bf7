"""Puts the repository root on ``sys.path``, so that the course-named modules beside this file reach ``models`` and
``experiments`` when a script here runs as ``python train.py`` (which puts only this folder on the path)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
