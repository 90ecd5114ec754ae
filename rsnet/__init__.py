"""rsnet: RealSmileNet (Yang et al., ACCV 2020) and the machinery that reproduces its experiments."""

__version__ = "0.1.0"
