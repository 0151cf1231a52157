"""Priors, box decoding and NMS of the FaceBoxes detector."""
