"""Layers with hand-written backward passes."""
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .conv import Conv2D
from .dropout import Dropout
from .linear import Linear
from .loss import SoftmaxCrossEntropy
from .module import Layer, Parameter, ShapeError
from .norm import BatchNorm1d, BatchNorm2d
from .pool import AvgPool2D, MaxPool2D
from .sequential import Sequential
from .shape import Flatten

__all__ = [
    "AvgPool2D", "BatchNorm1d", "BatchNorm2d", "Conv2D", "Dropout", "Flatten", "Layer", "LeakyReLU",
    "Linear", "MaxPool2D", "Parameter", "ReLU", "Sequential", "ShapeError", "Sigmoid",
    "SoftmaxCrossEntropy", "Tanh",
]
