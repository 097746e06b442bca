"""Shape arithmetic of a sliding window, the one definition (fastcnn.geometry re-exports it)."""


def out_size(size: int, k: int, s: int, p: int) -> int:
    """Output length along one axis: ⌊(size + 2p − k) / s⌋ + 1."""
    return (size + 2 * p - k) // s + 1
