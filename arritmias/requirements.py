"""Print requirements-api.txt from pyproject.toml, the single source of truth for dependencies.

``make requirements`` writes the file; ``tests/test_packaging.py`` fails when they disagree.
"""

import tomllib
from pathlib import Path

HEADER = (
    "# Generated from pyproject.toml by `make requirements`; do not edit by hand.\n"
    "# Users who do not install the package itself: pip install -r requirements-api.txt\n"
)


def render(pyproject: Path) -> str:
    """Return the requirements file text for the runtime dependencies of ``pyproject``."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return HEADER + "".join(f"{d}\n" for d in deps)


if __name__ == "__main__":
    print(render(Path(__file__).resolve().parent.parent / "pyproject.toml"), end="")
