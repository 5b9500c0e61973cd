"""The public API is explicit: each package's ``__all__`` names exactly its public attributes, every
name resolves, and every exported function and class has a runnable example. The lists themselves
live in the packages' ``__init__`` files only (a stray import or helper shows up as a public name
that ``__all__`` does not list).
"""

import __future__

import importlib
import inspect
import types

import pytest

import wsl_jax

PACKAGES = ("wsl_jax", "wsl_jax.data", "wsl_jax.models", "wsl_jax.train", "wsl_jax.zsl")


def _public_attributes(module: types.ModuleType) -> list:
    """Public names of ``dir(module)``, without its own subpackages and submodules.

    Submodules become attributes when imported (by anyone), and ``from __future__ import
    annotations`` leaves an ``annotations`` attribute: neither is part of the check. Any other public
    name is (e.g. a stray ``import numpy as np`` would show up as ``np``).

    >>> m = types.ModuleType("m")
    >>> m.np, m.annotations, m.f = inspect, __future__.annotations, len
    >>> _public_attributes(m)
    ['f', 'np']
    """

    def ignored(value) -> bool:
        if isinstance(value, __future__._Feature):
            return True
        return inspect.ismodule(value) and value.__name__.startswith(module.__name__ + ".")

    return sorted(
        n for n in dir(module) if not n.startswith("_") and not ignored(getattr(module, n))
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_unique_and_every_name_resolves(package):
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert len(set(names)) == len(names), f"duplicates in {package}.__all__"
    missing = [name for name in names if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ lists missing names: {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_exported(package):
    """A public attribute that ``__all__`` does not list is an accident (a stray import, a helper)."""
    module = importlib.import_module(package)
    stray = sorted(set(_public_attributes(module)) - set(module.__all__))
    assert not stray, f"{package} has public names not in its __all__: {stray}"


@pytest.mark.parametrize("package", PACKAGES)
def test_exported_callables_have_examples(package):
    """Every module and public function or class has one: see ``tests/test_docstrings.py``."""
    module = importlib.import_module(package)
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            doc = inspect.getdoc(obj) or ""
            assert ">>>" in doc, f"{package}.{name} has no runnable example (>>>) in its docstring"


def test_no_unexported_public_functions_at_top_level():
    public = {
        n
        for n, v in vars(wsl_jax).items()
        if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
    }
    assert public <= set(wsl_jax.__all__), public - set(wsl_jax.__all__)


def test_top_level_version():
    assert wsl_jax.__version__.count(".") == 2
