"""Helpers the tests share, imported by name (fixtures live in the conftest.py files)."""
