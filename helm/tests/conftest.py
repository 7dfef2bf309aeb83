import sys
import pathlib

# helmlib sits beside the tests; pytest runs them from anywhere.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import pytest  # noqa: E402

import helmlib  # noqa: E402


@pytest.fixture(scope="session", params=sorted(helmlib.VALUE_SETS))
def rendered(request):
    """(value set name, rendered objects) for every value set in helm/tests/values."""
    return request.param, helmlib.render_set(request.param)
