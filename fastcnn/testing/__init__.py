"""Test helpers shipped with the package: ``fake_cupy``, a strict NumPy stand-in for CuPy
(switched on only by ``FASTCNN_FAKE_CUPY=1``)."""
