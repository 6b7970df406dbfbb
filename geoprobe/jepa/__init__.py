"""A Gaussian-regularised JEPA world model trained from pixels (LeWorldModel-style).

``geoprobe.jepa.train`` trains it, ``geoprobe.jepa.export`` writes its latents with the true
state, ``geoprobe.jepa.pipeline`` runs generate -> train -> export -> probe -> report, and the
``geoprobe jepa`` command exposes all of it. See docs/jepa.md.
"""

from geoprobe.sigreg import epps_pulley, sigreg  # shipped names: SIGReg now lives in the core

from .model import JEPA, JEPAConfig, WorldModel
from .train import load_model, load_world_model, train

__all__ = ["JEPA", "JEPAConfig", "WorldModel", "sigreg", "epps_pulley", "train", "load_model",
           "load_world_model"]
