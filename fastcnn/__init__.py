"""fastcnn: a convolutional-network framework whose every forward and backward pass is hand-written.

Importing fastcnn changes nothing in the process (no environment variable, no thread pool).
Settings that a block needs are scoped: ``with fastcnn.settings(threads=2): ...``.
"""
from .scoped_settings import settings


def _kernels_from_the_source_tree() -> None:
    """Make ``fastcnn.kernels`` importable when this package is imported from a source checkout.

    The kernels live in the repository's top-level ``kernels/`` folder, which an install maps to
    ``fastcnn.kernels`` (pyproject's package-dir). Python started in the checkout (``python -m
    pytest``, ``python -m fastcnn``, ``python -c``) imports ``fastcnn`` from the source tree, where
    no ``fastcnn/kernels`` exists; then the checkout's ``kernels/`` is loaded under that name.
    Installed (regular, editable, wheel), the import system finds it and this does nothing."""
    import importlib.util
    import os
    import sys

    if "fastcnn.kernels" in sys.modules or importlib.util.find_spec("fastcnn.kernels") is not None:
        return
    init = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels", "__init__.py")
    if not os.path.isfile(init):
        return  # an incomplete install: the import of fastcnn.kernels will say so
    spec = importlib.util.spec_from_file_location("fastcnn.kernels", init,
                                                  submodule_search_locations=[os.path.dirname(init)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["fastcnn.kernels"] = module
    spec.loader.exec_module(module)


_kernels_from_the_source_tree()

__version__ = "0.1.0"
__all__ = ["settings", "__version__"]
