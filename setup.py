"""Build hook for the C parts that cffi compiles at install time (everything else is in pyproject.toml).

- hostdrv/splitnic/_hotpath_build.py: the driver's hot path (splitnic._hotpath_cffi)
- hostdrv/splitnic/_hostlink_build.py: the host side of the eth host link (splitnic._hostlink_cffi)
- sim/splitnic_sim/_softnic_build.py: the software NIC model (splitnic_sim._softnic_cffi)
"""

from setuptools import setup

setup(cffi_modules=["hostdrv/splitnic/_hotpath_build.py:ffibuilder",
                    "hostdrv/splitnic/_hostlink_build.py:ffibuilder",
                    "sim/splitnic_sim/_softnic_build.py:ffibuilder"])
