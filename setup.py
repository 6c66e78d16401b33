"""The package list: every package under mixmerge/, and mixmerge.stages from the folder stages/
(pyproject.toml maps it; setuptools' discovery cannot find a package outside its own folder)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["mixmerge", "mixmerge.*"]), "mixmerge.stages"])
