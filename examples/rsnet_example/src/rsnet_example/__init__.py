"""An example of a researcher's package for rsnet (see ../../README.md)."""
