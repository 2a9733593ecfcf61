"""The checkout's own tools. A package only so that ``python -m scripts.stack`` and the
tests (``from scripts.stack import Stack``) can import scripts/stack.py."""
