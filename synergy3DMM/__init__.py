"""The application floor, named after the original's API module (`synergy3DMM.py`): the
photo pipeline (`pipeline`), the runners of each network on PyTorch or ONNX Runtime
(`runners`), the output objects by mode (`outputs`, `render`) and the processing of many
images (`folders`). Scripts and the Python API are built from these; importing the package
loads nothing heavy.
"""
