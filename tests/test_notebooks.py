"""The example notebooks run from top to bottom and their key outputs are sane.

Each notebook is executed with ``nbclient`` on ipykernel's native kernel of the running interpreter
(so the kernel sees this virtual environment), in a temporary working directory (the notebooks must
not depend on being started from the repository root), with a per-cell timeout.
"""

import ast
import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("ipykernel.kernelspec")
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CELL_TIMEOUT_S = 300
KERNEL_NAME = "wsl-jax-tests"


def execute_notebook(path: Path, cwd: Path, kernel_dir: Path):
    """Executes the notebook at ``path`` in ``cwd``; returns the executed notebook node.

    The kernel is ``python -m ipykernel_launcher`` of ``sys.executable``, written as a kernelspec in
    ``kernel_dir`` so that no user-installed ``python3`` kernelspec is picked up instead.
    """
    kernelspec.write_kernel_spec(kernel_dir / KERNEL_NAME)
    spec_json = kernel_dir / KERNEL_NAME / "kernel.json"
    spec = json.loads(spec_json.read_text())
    spec["argv"][0] = sys.executable
    spec_json.write_text(json.dumps(spec))
    km = KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]),
    )
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return nb


def _tagged_text(nb, tag: str) -> str:
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return "".join(o.get("text", "") for o in cells[0].outputs if o.output_type == "stream")


def test_notebooks_are_stored_with_outputs():
    for path in sorted(EXAMPLES.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.execution_count for c in code), (
            f"{path.name}: run it and save outputs"
        )
        assert path.stat().st_size < 400_000, f"{path.name} is {path.stat().st_size} bytes"


def test_quickstart_runs_and_loss_goes_down(tmp_path):
    cwd = tmp_path / "elsewhere"  # not the repository root
    cwd.mkdir()
    started = time.perf_counter()
    nb = execute_notebook(EXAMPLES / "quickstart.ipynb", cwd, tmp_path / "kernels")
    elapsed = time.perf_counter() - started

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    losses = ast.literal_eval(_tagged_text(nb, "loss-check").strip().splitlines()[-1])
    assert 0 < losses["last_loss"] < losses["first_loss"], losses
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # class maps, loss curve, trained class maps
    assert not list(cwd.iterdir()), "the notebook wrote into its working directory"
    assert elapsed < 600, f"quickstart took {elapsed:.0f} s"
