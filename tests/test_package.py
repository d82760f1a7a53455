"""The helpers package imports cleanly: ``from helpers import *`` and every public name."""

from __future__ import annotations

import importlib

import pytest

import helpers


def test_star_import_gives_every_name_in_all():
    namespace: dict = {}
    exec("from helpers import *", namespace)  # the statement under test
    missing = [name for name in helpers.__all__ if name not in namespace]
    assert not missing, f"from helpers import * lacks {missing}"


@pytest.mark.parametrize("name", [n for n in helpers.__all__ if n != "__version__"])
def test_every_submodule_and_its_public_names_import(name):
    module = importlib.import_module(f"helpers.{name}")
    for public in getattr(module, "__all__", []):
        assert hasattr(module, public), f"helpers.{name}.__all__ names {public!r}, not defined"
    assert getattr(helpers, name) is module


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        helpers.nope  # noqa: B018
