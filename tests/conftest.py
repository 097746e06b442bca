"""Test-wide set-up: fastcnn's tuning cache goes to a temporary folder, never the user's."""
import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _tuning_cache_in_tmp(tmp_path_factory):
    before = os.environ.get("FASTCNN_CACHE_DIR")
    os.environ["FASTCNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("fastcnn-cache"))
    yield
    if before is None:
        os.environ.pop("FASTCNN_CACHE_DIR", None)
    else:
        os.environ["FASTCNN_CACHE_DIR"] = before
