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


def test_the_flags_are_the_fields():
    """app.py's flags come from the fields' metadata: each flag sets its field, the
    defaults are the fields' defaults, `--no-page` turns the page off, and the shared model
    flags fill the model's fields."""
    import argparse

    from synergy3DMM.cli import add_detector_flags, add_model_flags

    def parsed(*argv: str) -> ServeSettings:
        parser = argparse.ArgumentParser()
        add_model_flags(parser, output=None)
        add_detector_flags(parser)
        ServeSettings.add_flags(parser)
        args = parser.parse_args(list(argv))
        return ServeSettings.from_args(args, temp_dir=args.output)

    defaults = parsed()
    assert defaults == ServeSettings(threshold=0.5)  # the detector flag's default is FaceBoxes' own
    changed = parsed("--host", "0.0.0.0", "--port", "8000", "--api-key", "k", "--no-auth", "--max-upload-mb", "2.5",
                     "--max-megapixels", "3", "--queue", "0", "--batch-window-ms", "1.5", "--workers", "2",
                     "--no-page", "--access-log", "-w", "w.pth", "-a", "mobilenet_v2", "--device", "cpu", "--onnx",
                     "--threshold", "0.8", "-o", "/tmp/requests")
    assert changed == ServeSettings(host="0.0.0.0", port=8000, weights="w.pth", arch="mobilenet_v2", device="cpu",
                                    backend="onnx", threshold=0.8, api_key="k", no_auth=True, max_upload_mb=2.5,
                                    max_megapixels=3.0, queue=0, batch_window_ms=1.5, workers=2, page=False,
                                    access_log=True, temp_dir="/tmp/requests")
    assert (changed.max_upload_bytes, changed.max_pixels) == (int(2.5 * (1 << 20)), 3_000_000)


def test_limits_and_threshold_are_checked():
    for wrong in (dict(max_upload_mb=0), dict(max_megapixels=-1), dict(queue=-1), dict(workers=0)):
        with pytest.raises(SynergyError, match="must be positive"):
            ServeSettings(**wrong).check()
    with pytest.raises(SynergyError, match="threshold 1.5 is not a score") as exc:
        ServeSettings(threshold=1.5).check()
    assert exc.value.option == "threshold"


def test_settings_reach_worker_processes_without_the_key_in_them(monkeypatch):
    import json
    import os

    from synergy3DMM.serve.settings import API_KEY_VARIABLE, SETTINGS_VARIABLE

    monkeypatch.delenv(API_KEY_VARIABLE, raising=False)
    monkeypatch.delenv(SETTINGS_VARIABLE, raising=False)
    settings = ServeSettings(port=8001, api_key="secret", queue=3, threshold=0.7)
    settings.to_environment()
    assert "secret" not in os.environ[SETTINGS_VARIABLE] and json.loads(os.environ[SETTINGS_VARIABLE])["queue"] == 3
    assert ServeSettings.from_environment() == settings
