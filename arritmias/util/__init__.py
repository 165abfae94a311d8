"""Helpers every stage uses: atomic writes (:mod:`~arritmias.util.atomic`), compiled loops
(:mod:`~arritmias.util.jit`), progress bars (:mod:`~arritmias.util.progress`: tqdm, imported from there, since the
served model's environment has no tqdm) and a quiet local Ray (:mod:`~arritmias.util.ray_local`). They import
nothing else of the package."""

from arritmias.util.atomic import staged_files, staging_folder, write_atomic, write_text_atomic
from arritmias.util.jit import njit

__all__ = ["njit", "staged_files", "staging_folder", "write_atomic", "write_text_atomic"]
