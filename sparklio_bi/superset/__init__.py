"""Superset: its internals (the one fence), the app in-process, setup, roles, assets."""
