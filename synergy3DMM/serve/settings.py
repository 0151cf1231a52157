"""The service's settings: what `app.py`'s flags set (the service's own flags are declared
once, here, on each field: `utils.flags.flag_field`), the rule for the API key,
and their way to worker processes (`--workers N` starts N processes, each of which builds
its application from these settings in the environment)."""
from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
from dataclasses import dataclass

from FaceBoxes.FaceBoxes import check_threshold
from utils.errors import SynergyError
from utils.flags import add_flags, flag_field, parsed_values

API_KEY_VARIABLE = "SYNERGYNET_API_KEY"  # the key, when --api-key is not given
SETTINGS_VARIABLE = "SYNERGYNET_SERVE_SETTINGS"  # the settings, as JSON, for worker processes
MB = 1 << 20


@dataclass
class ServeSettings:
    host: str = flag_field("127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    port: int = flag_field(7860, help="port (default %(default)s)")
    # the model: the flags every script shares (synergy3DMM.cli.add_model_flags, add_detector_flags)
    weights: str | None = None
    arch: str | None = None
    device: str = "auto"
    backend: str = "auto"
    threshold: float | None = None  # the detector's score a face must exceed (None: FaceBoxes' own)
    api_key: str | None = flag_field(  # required on every /v1/ route when set
        None, help=f"key every /v1/ request must send (X-API-Key); default: ${API_KEY_VARIABLE}. Required with a "
                   "--host other machines can reach, unless --no-auth")
    no_auth: bool = flag_field(False, help="serve a non-loopback --host without a key, on purpose")
    max_upload_mb: float = flag_field(20.0, help="largest upload in MB (default %(default)g)")
    max_megapixels: float = flag_field(40.0, help="largest image in megapixels, read from its header "
                                                  "(default %(default)g)")
    queue: int = flag_field(16, help="requests that may wait for a thread; more are answered 503 (default %(default)s)")
    batch_window_ms: float = flag_field(5.0, help="how long the regressor waits for other requests' faces "
                                                  "(default %(default)g)")
    workers: int = flag_field(1, help="server processes, each with its own models (default %(default)s)")  # uvicorn's
    page: bool = flag_field(True, flag="--no-page", help="the API alone, without the web page")  # at /
    access_log: bool = flag_field(  # uvicorn's
        False, help="a line per request on stdout (off by default: /metrics counts requests, and a line per request "
                    "to a slow reader of stdout costs each request milliseconds)")
    max_video_seconds: float = 10.0  # the page's video: the first seconds are processed
    temp_dir: str | None = None  # where per-request temporary folders go (default: the system's)

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        """The service's own flags (its flag fields), in the fields' order."""
        add_flags(parser, cls)

    @classmethod
    def from_args(cls, args: argparse.Namespace, **others) -> "ServeSettings":
        """The settings of parsed flags (every field a flag set; `others` for the rest)."""
        return cls(**parsed_values(cls, args), **others)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1e6)

    def check(self) -> None:
        """The key rule: on a loopback address anything goes; on any other a key is needed,
        unless `no_auth` says that none is wanted. Limits must be positive, a threshold a
        score. Before the server starts, not in its loading thread."""
        if self.max_upload_mb <= 0 or self.max_megapixels <= 0 or self.queue < 0 or self.workers < 1:
            raise SynergyError("--max-upload-mb and --max-megapixels must be positive, --queue at least 0 and "
                               "--workers at least 1")
        if not is_loopback(self.host) and not self.api_key and not self.no_auth:
            raise SynergyError(f"--host {self.host} is reachable from other machines: give an API key (--api-key or "
                               f"{API_KEY_VARIABLE}) or say --no-auth", option="api_key")
        if self.threshold is not None:
            check_threshold(self.threshold)

    def with_key_from_environment(self) -> "ServeSettings":
        if self.api_key or not os.environ.get(API_KEY_VARIABLE):
            return self
        return dataclasses.replace(self, api_key=os.environ[API_KEY_VARIABLE])

    def to_environment(self) -> None:
        """Put these settings where worker processes find them (`from_environment`); the key
        stays in its own variable."""
        if self.api_key:
            os.environ[API_KEY_VARIABLE] = self.api_key
        os.environ[SETTINGS_VARIABLE] = json.dumps(dataclasses.asdict(dataclasses.replace(self, api_key=None)))

    @classmethod
    def from_environment(cls) -> "ServeSettings":
        text = os.environ.get(SETTINGS_VARIABLE)
        settings = cls(**json.loads(text)) if text else cls()
        return settings.with_key_from_environment()


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or `localhost`) is reachable from this machine alone."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False
