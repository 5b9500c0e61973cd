"""One logging facility: library modules log through stdlib ``logging`` (module loggers), never
``print`` nor absl; the entry scripts (``train.py``, ``evaluate.py``) decide what is shown."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wsl_jax"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _offences(path, root=PACKAGE.parent):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Name) and node.id == "print"
        ):  # a call, or print passed as a callback
            yield f"{path.relative_to(root)}:{node.lineno}: print"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names]
            if any(name == "absl" or name.startswith("absl.") for name in names):
                yield f"{path.relative_to(root)}:{node.lineno}: absl import"


def test_the_package_has_modules():
    assert len(MODULES) > 20


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_code_logs_through_stdlib_logging(path):
    assert list(_offences(path)) == []


def test_the_check_catches_a_print(tmp_path):
    bad = tmp_path / "module.py"
    bad.write_text("from absl import logging\n\ndef f(log=print):\n    print('x')\n")
    assert [o.split(": ")[1] for o in _offences(bad, tmp_path)] == ["absl import", "print", "print"]
