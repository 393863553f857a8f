"""The spec's stored record: one MLflow tag, so a spec too large for it is refused when read."""

import pytest

from mnistlab.spec.parse import parse_spec
from mnistlab.spec.run import ConfigError


def test_a_spec_too_large_to_store_is_refused_with_the_number(tmp_path):
    seeds = list(range(1, 6001))  # listed by hand, not 0..n-1
    with pytest.raises(ConfigError, match=r"characters once stored, more than the 20,000"):
        parse_spec({"name": "big", "models": ["cnn2"], "seeds": seeds}, tmp_path / "b.toml")
