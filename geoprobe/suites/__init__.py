"""Suites that ship with geoprobe, runnable by name."""
