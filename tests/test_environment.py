"""pyproject.toml is the one source of truth; environment.yml must install the same set."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
CONDA_TO_PYPI = {"pytorch": "torch"}  # conda-forge names that differ from PyPI's
NOT_PACKAGES = {"python", "pip"}


def pyproject_requirements() -> dict[str, str]:
    """{package name: version specifier} over dependencies and the test/dev extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in ("test", "dev"):
        lines += project["optional-dependencies"][extra]
    requirements = {}
    for line in lines:
        req = Requirement(line)
        if canonicalize_name(req.name) == canonicalize_name(project["name"]):
            continue  # "hands-on-resnet[test]": the dev extra includes the test extra
        requirements[canonicalize_name(req.name)] = str(req.specifier)
    return requirements


def environment_requirements() -> tuple[dict[str, str], list[str]]:
    """({name: specifier} of conda and pip entries, the pip lines that are options)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    entries, pip_lines = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_lines = dep["pip"]
            entries += [line for line in pip_lines if not line.startswith("-")]
        else:
            entries.append(dep)
    requirements = {}
    for entry in entries:
        req = Requirement(entry)
        name = CONDA_TO_PYPI.get(req.name, req.name)
        if name not in NOT_PACKAGES:
            requirements[canonicalize_name(name)] = str(req.specifier)
    return requirements, [line for line in pip_lines if line.startswith("-")]


def test_environment_yml_lists_the_same_packages_and_bounds_as_pyproject():
    from_pyproject = pyproject_requirements()
    from_environment, _ = environment_requirements()
    missing = sorted(set(from_pyproject) - set(from_environment))
    extra = sorted(set(from_environment) - set(from_pyproject))
    assert not missing, f"in pyproject.toml but not environment.yml: {missing}"
    assert not extra, f"in environment.yml but not pyproject.toml: {extra}"
    differing = {
        name: (from_pyproject[name], from_environment[name])
        for name in from_pyproject
        if from_pyproject[name] != from_environment[name]
    }
    assert not differing, f"version bounds differ (pyproject, environment.yml): {differing}"


def test_environment_yml_installs_the_course_package_with_dev_extras():
    _, pip_options = environment_requirements()
    assert "-e .[dev]" in pip_options


def test_the_required_course_packages_are_declared():
    declared = set(pyproject_requirements())
    required = {"jupyterlab", "torch", "torchvision", "matplotlib", "seaborn", "grad-cam"}
    required |= {"tqdm", "scikit-learn", "numpy", "pytest", "nbval", "timm", "ruff"}
    assert required <= declared, f"missing: {sorted(required - declared)}"
