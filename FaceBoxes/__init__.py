"""FaceBoxes face detector (the `FaceBoxesProd.pth` weights the original ships)."""
from .FaceBoxes import FaceBoxes

__all__ = ["FaceBoxes"]
