"""The application floor, named after the original's API module (`synergy3DMM.py`): the
Python API (`SynergyNet`, in `api`), the photo pipeline (`pipeline`) with its detectors
(`detectors`) and what passes between its stages (`results`), the runners of each network
on PyTorch or ONNX Runtime (`runners`), the output objects by mode (`outputs`, `render`),
the processing of many images (`folders`) and their split among processes (`sharding`),
and what the scripts share (`cli`, `flows`, `blas`). Scripts and the API are built from these.

    from synergy3DMM import SynergyNet
    lmks, meshes, poses = SynergyNet().get_all_outputs(img_bgr)

Importing the package loads nothing heavy: `SynergyNet` is imported on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["SynergyNet"]

if TYPE_CHECKING:
    from synergy3DMM.api import SynergyNet


def __getattr__(name: str):
    if name == "SynergyNet":
        from synergy3DMM.api import SynergyNet

        return SynergyNet
    raise AttributeError(f"module 'synergy3DMM' has no attribute {name!r}")
