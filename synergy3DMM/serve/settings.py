"""The service's settings: what `app.py`'s flags set, the rule for the API key, and their
way to worker processes (`--workers N` starts N processes, each of which builds its
application from these settings in the environment)."""
from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from dataclasses import dataclass

from utils.errors import SynergyError

API_KEY_VARIABLE = "SYNERGYNET_API_KEY"  # the key, when --api-key is not given
SETTINGS_VARIABLE = "SYNERGYNET_SERVE_SETTINGS"  # the settings, as JSON, for worker processes
MB = 1 << 20


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 7860
    weights: str | None = None
    arch: str | None = None
    device: str = "auto"
    backend: str = "auto"
    threshold: float | None = None  # the detector's score a face must exceed (None: FaceBoxes' own)
    api_key: str | None = None  # required on every /v1/ route when set
    no_auth: bool = False  # a non-loopback host without a key, on purpose
    max_upload_mb: float = 20.0  # an upload's bytes
    max_megapixels: float = 40.0  # an image's pixels, read from its header before decoding
    queue: int = 16  # requests that may wait for a worker; more are answered 503
    batch_window_ms: float = 5.0  # how long the regressor waits for the faces of requests being prepared
    workers: int = 1  # processes (uvicorn's)
    page: bool = True  # the Gradio page at /
    access_log: bool = False  # uvicorn's line per request on stdout
    max_video_seconds: float = 10.0  # the page's video: the first seconds are processed
    temp_dir: str | None = None  # where per-request temporary folders go (default: the system's)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1e6)

    def check(self) -> None:
        """The key rule: on a loopback address anything goes; on any other a key is needed,
        unless `no_auth` says that none is wanted. Limits must be positive."""
        if self.max_upload_mb <= 0 or self.max_megapixels <= 0 or self.queue < 0 or self.workers < 1:
            raise SynergyError("--max-upload-mb and --max-megapixels must be positive, --queue at least 0 and "
                               "--workers at least 1")
        if not is_loopback(self.host) and not self.api_key and not self.no_auth:
            raise SynergyError(f"--host {self.host} is reachable from other machines: give an API key (--api-key or "
                               f"{API_KEY_VARIABLE}) or say --no-auth", option="api_key")

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
