"""Print requirements-api.txt from pyproject.toml, the single source of truth for dependencies.

``make requirements`` writes the file; ``tests/project/test_packaging.py`` fails when they disagree.
"""

import tomllib
from pathlib import Path

HEADER = (
    "# Generated from pyproject.toml by `make requirements`; do not edit by hand.\n"
    "# Users who do not install the package itself: pip install -r requirements-api.txt\n"
)


PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def runtime_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The runtime dependencies declared in ``pyproject`` (also the pip requirements of the logged model).

    An installed copy without pyproject.toml beside it falls back to the installed distribution's metadata.
    """
    if pyproject.is_file():
        return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    from importlib import metadata

    return [r for r in metadata.requires("arritmias") or [] if "extra ==" not in r]


# What the served model imports (arritmias.serving and arritmias.model.detector with the network in OpenVINO):
# the requirements of the logged pyfunc, so `mlflow models serve --env-manager virtualenv` and images built from
# the model carry neither TensorFlow (~1 GB, seconds of start-up) nor training, analysis or monitoring packages.
SERVED = ("numpy", "scipy", "pandas", "mlflow", "openvino", "orjson")


def served_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The runtime requirements the served model needs (see ``SERVED``), pinned as in ``pyproject``."""
    import re

    def name(req: str) -> str:
        return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower()

    return [r for r in runtime_requirements(pyproject) if name(r) in SERVED]


def render(pyproject: Path = PYPROJECT) -> str:
    """Return the requirements file text for the runtime dependencies of ``pyproject``."""
    return HEADER + "".join(f"{d}\n" for d in runtime_requirements(pyproject))


if __name__ == "__main__":
    print(render(), end="")
