"""Progress bars for long work: shown on a terminal, silent in logs and pipes (CI, tests)."""

from tqdm import tqdm


def progress(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar on stderr; ``enabled=False`` hides it, and it also hides itself when stderr is no terminal."""
    return tqdm(iterable, disable=None if enabled else True, leave=False, dynamic_ncols=True, **kwargs)
