"""The examples in the package's docstrings run and print what they show (`>>>` lines are documentation readers
copy, so they must stay true)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import opensentiment_pipeline


def modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(opensentiment_pipeline.__path__, "opensentiment_pipeline."):
        spec = importlib.util.find_spec(info.name)
        if spec and spec.origin and spec.origin.endswith(".py") and ">>>" in open(spec.origin).read():
            names.append(info.name)
    return names


MODULES = modules_with_examples()


def test_the_package_has_docstring_examples_to_run():
    assert "opensentiment_pipeline.core.vectors.encoding" in MODULES and len(MODULES) >= 5


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0 and result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
