"""fastcnn: a convolutional-network framework whose every forward and backward pass is hand-written.

Importing fastcnn changes nothing in the process (no environment variable, no thread pool).
Settings that a block needs are scoped: ``with fastcnn.settings(threads=2): ...``.
"""
from .scoped_settings import settings

__version__ = "0.1.0"
__all__ = ["settings", "__version__"]
