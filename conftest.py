"""Shared fixtures (the test environment itself is set in testing_env.py, loaded before Django)."""

from __future__ import annotations
