"""The public API is explicit: every name in wsl_jax.__all__ exists and is documented."""

import inspect

import wsl_jax


def test_all_names_exist_and_are_documented():
    assert len(set(wsl_jax.__all__)) == len(wsl_jax.__all__)
    for name in wsl_jax.__all__:
        obj = getattr(wsl_jax, name)
        if callable(obj):
            doc = inspect.getdoc(obj) or ""
            assert "Example" in doc or ">>>" in doc, (
                f"wsl_jax.{name} has no example in its docstring"
            )


def test_no_unexported_public_functions_at_top_level():
    public = {
        n
        for n, v in vars(wsl_jax).items()
        if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
    }
    assert public <= set(wsl_jax.__all__), public - set(wsl_jax.__all__)
