"""fastcnn: a convolutional-network framework whose every forward and backward pass is hand-written."""
__version__ = "0.1.0"
