"""Every public module of ``wsl_jax``, and every public function and class defined in it, has a
docstring with a runnable example (a ``>>>`` doctest; ``setup.cfg`` runs them with
``--doctest-modules``).

Public: modules whose dotted path has no part starting with ``_``; in a module, the names of its
``__all__`` or, without one, the names not starting with ``_``; only functions and classes defined in
that module count (re-exports are checked where they are defined).
"""

import importlib
import inspect
import pkgutil

import wsl_jax

MODULE = "<module>"


def public_modules():
    """The importable public modules of the package, ``wsl_jax`` itself first.

    >>> mods = public_modules()
    >>> mods[0].__name__, "wsl_jax.pooling" in {m.__name__ for m in mods}
    ('wsl_jax', True)
    """
    modules = [wsl_jax]
    for info in pkgutil.walk_packages(wsl_jax.__path__, prefix="wsl_jax."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def public_objects(module):
    """``(name, object)`` of the public functions and classes defined in ``module``.

    >>> import wsl_jax.pooling
    >>> "max_min_pool" in dict(public_objects(wsl_jax.pooling))
    True
    """
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
            yield name, obj


def has_example(doc) -> bool:
    """Whether a docstring holds a doctest.

    >>> has_example(">>> 1 + 1\\n2"), has_example("Example (not run)::"), has_example(None)
    (True, False, False)
    """
    return ">>>" in (doc or "")


def offenders():
    """Sorted ``(module, name)`` pairs lacking an example; ``name`` is ``MODULE`` for the module."""
    found = []
    for module in public_modules():
        if not has_example(module.__doc__):
            found.append((module.__name__, MODULE))
        for name, obj in public_objects(module):
            if not has_example(inspect.getdoc(obj)):
                found.append((module.__name__, name))
    return sorted(found)


def test_every_public_module_function_and_class_has_an_example():
    missing = offenders()
    assert not missing, "docstrings without a runnable example (>>>):\n" + "\n".join(
        f"  {module}: {name}" for module, name in missing
    )
