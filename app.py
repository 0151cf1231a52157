#!/usr/bin/env python3
"""The web page and the HTTP service: see faces in 3D in a browser, call the model from any
program.

    python app.py                                  # http://127.0.0.1:7860: the page at /, the API under /v1/
    python app.py --host 0.0.0.0 --api-key KEY     # reachable from other machines: a key is required
    python app.py --workers 4                      # four processes (each loads the models)

    curl -F image=@photo.jpg http://127.0.0.1:7860/v1/faces          # singleImage.py's JSON
    curl -F image=@photo.jpg 'http://127.0.0.1:7860/v1/render?mode=3d' -o overlay.jpg
    curl -F image=@photo.jpg 'http://127.0.0.1:7860/v1/mesh?format=glb&face=0' -o face.glb

API documentation at /docs; /healthz, /readyz, /metrics. Ctrl-C or SIGTERM stops it once
the requests in flight have finished. Needs the `app` extra (`pip install .[app]`).
More: docs/web.md.
"""
from __future__ import annotations

from synergy3DMM.blas import single_threaded_blas

single_threaded_blas()  # before numpy loads

import argparse  # noqa: E402
import importlib  # noqa: E402
import signal  # noqa: E402

from synergy3DMM.cli import MODEL_FLAGS, add_detector_flags, add_model_flags, note, resolve_assets  # noqa: E402
from synergy3DMM.outputs import OUTPUT_MODES, make_outputs  # noqa: E402
from synergy3DMM.serve.settings import ServeSettings  # noqa: E402
from utils.errors import SynergyError, run_cli  # noqa: E402

FLAGS = {**MODEL_FLAGS, "api_key": "--api-key / --no-auth"}
GRACEFUL_S = 60  # how long requests in flight may take to finish once asked to stop
APPLICATION = "synergy3DMM.serve.http:app_from_environment"  # built in each worker process


def parse_args(argv: list[str] | None = None) -> ServeSettings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(parser, output=None,
                    output_help="folder for each request's temporary files (default: the system's)")
    add_detector_flags(parser)
    ServeSettings.add_flags(parser)
    args = parser.parse_args(argv)
    settings = ServeSettings.from_args(args, temp_dir=args.output).with_key_from_environment()
    settings.check()  # before the server starts
    return settings


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    # every data file of every answer the service gives, before it starts: one line if one is missing
    resolve_assets(make_outputs(OUTPUT_MODES), settings.weights)
    try:  # the app extra, checked before the server starts
        import uvicorn

        importlib.import_module(APPLICATION.split(":")[0])
    except ImportError as exc:
        raise SynergyError(f"the web service needs the app extra ({exc.name} is missing): pip install '.[app]'") \
            from None
    settings.to_environment()  # each worker process builds its application from these
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"serving on http://{host}:{settings.port}/ (page at /, API docs at /docs); Ctrl-C stops", flush=True)
    if settings.api_key:
        note("the /v1/ routes and the page need the API key")
    # uvicorn stops on SIGINT and SIGTERM once the requests in flight are answered, then
    # raises the signal again with the handlers it found: these make that an exit with 0
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stopped)
    uvicorn.run(APPLICATION, factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, timeout_graceful_shutdown=GRACEFUL_S, log_level="info",
                access_log=settings.access_log)
    return 0


def _stopped(signum: int, _frame) -> None:
    print(f"stopped ({signal.Signals(signum).name})", flush=True)
    raise SystemExit(0)


def cli() -> None:
    run_cli(main, FLAGS)


if __name__ == "__main__":
    cli()
