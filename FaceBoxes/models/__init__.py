"""The FaceBoxes network."""
