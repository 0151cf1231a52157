"""Compiled parts of the project (everything else is declared in pyproject.toml).

`pip install -e .` (or `python setup.py build_ext --inplace`) builds them next to their
sources. The NMS has an identical numpy fallback; the rasteriser has none, and
rendering then asks the user to run ./setup.sh.
"""
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

OPTIMISE = ["-O3"]

extensions = [
    Extension(
        "FaceBoxes.utils.nms.cpu_nms",
        ["FaceBoxes/utils/nms/cpu_nms.pyx"],
        include_dirs=[np.get_include()],
        extra_compile_args=OPTIMISE,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension(
        "Sim3DR.lib.Sim3DR_Cython",
        ["Sim3DR/lib/rasterize.pyx", "Sim3DR/lib/rasterize_kernel.cpp"],
        include_dirs=[np.get_include(), "Sim3DR/lib"],
        language="c++",
        extra_compile_args=OPTIMISE + ["-std=c++17", "-pthread"],  # the kernels start threads
        extra_link_args=["-pthread"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
]

setup(ext_modules=cythonize(extensions, language_level=3, compiler_directives={"boundscheck": False, "wraparound": False}))
