"""Loaders and generators for the data probes need. Installed as ``geoprobe.datasets``."""
