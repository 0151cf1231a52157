"""The 62 parameters the networks regress, laid out once:

    [ pose 12 (P = [R | t], 3x4) | shape 40 (alpha_shp) | expression 10 (alpha_exp) ]

whitened by the network (`(p - mean) / std`) and de-whitened with `dewhiten`. The model,
the losses, the backbones, the geometry and the checkpoints all read these names.
"""
from __future__ import annotations

from typing import TypeVar

Array = TypeVar("Array")  # a numpy array or a torch tensor

NUM_POSE = 12
NUM_SHAPE = 40
NUM_EXPRESSION = 10
NUM_PARAMS = NUM_POSE + NUM_SHAPE + NUM_EXPRESSION  # 62
NUM_TEXTURE = 40  # a texture head some of the original's backbones define but never train

POSE = slice(0, NUM_POSE)
SHAPE = slice(NUM_POSE, NUM_POSE + NUM_SHAPE)
EXPRESSION = slice(NUM_POSE + NUM_SHAPE, NUM_PARAMS)
SHAPE_AND_EXPRESSION = slice(NUM_POSE, NUM_PARAMS)  # the 50 3DMM coefficients

STD_SIZE = 120  # side of the network's input crop: the crop space the parameters live in


def dewhiten(params: Array, mean: Array, std: Array) -> Array:
    """Whitened network output (..., 62) -> 3DMM parameters: `params * std + mean` (numpy
    arrays or torch tensors; `mean` and `std` may hold more than 62 entries)."""
    if params.shape[-1] != NUM_PARAMS:
        raise ValueError(f"expected {NUM_PARAMS} parameters, got {params.shape[-1]}")
    return params * std[:NUM_PARAMS] + mean[:NUM_PARAMS]


def whiten(params: Array, mean: Array, std: Array) -> Array:
    """3DMM parameters (..., 62) -> whitened (the inverse of `dewhiten`): `(params - mean) / std`
    (training labels are whitened this way)."""
    if params.shape[-1] != NUM_PARAMS:
        raise ValueError(f"expected {NUM_PARAMS} parameters, got {params.shape[-1]}")
    return (params - mean[:NUM_PARAMS]) / std[:NUM_PARAMS]
