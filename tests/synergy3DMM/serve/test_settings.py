"""The service's settings (`synergy3DMM.serve.settings`): the key rule, the limits, and
the flags declared once in the fields."""
from __future__ import annotations

import pytest

from synergy3DMM.serve.settings import ServeSettings, is_loopback
from utils.errors import SynergyError


def test_the_key_rule():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.5.5.5")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.2")
    assert not is_loopback("example.org")
    ServeSettings(host="127.0.0.1").check()
    ServeSettings(host="0.0.0.0", api_key="x").check()
    ServeSettings(host="0.0.0.0", no_auth=True).check()
    with pytest.raises(SynergyError, match="give an API key"):
        ServeSettings(host="0.0.0.0").check()
