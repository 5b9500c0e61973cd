"""Studies run as modules from the repository root: ``python -m experiments.mil`` etc."""
