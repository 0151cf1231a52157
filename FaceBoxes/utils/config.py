"""Constants of the FaceBoxes detector, as the original configures it."""
from __future__ import annotations

# Anchor sizes (pixels of the network input) per detection level, and each level's stride.
MIN_SIZES: tuple[tuple[int, ...], ...] = ((32, 64, 128), (256,), (512,))
STEPS: tuple[int, ...] = (32, 64, 128)
# Anchors of these sizes are repeated on an n x n sub-grid of their cell (anchor densification).
DENSE_GRID: dict[int, int] = {32: 4, 64: 2}
# Scales of the box regression (centre, size).
VARIANCE: tuple[float, float] = (0.1, 0.2)

# Detection settings of FaceBoxes.py.
CONFIDENCE_THRESHOLD = 0.05  # scores kept before NMS
TOP_K = 5000  # best boxes passed to NMS
NMS_THRESHOLD = 0.3  # IoU at which a lower-scoring box is suppressed
KEEP_TOP_K = 750  # boxes kept after NMS
VIS_THRESHOLD = 0.5  # scores returned to the caller
MAX_HEIGHT, MAX_WIDTH = 720, 1080  # larger images are scaled down to fit before detection
MEAN_BGR: tuple[int, int, int] = (104, 117, 123)
