"""The FastAPI application: the JSON API under /v1/, health, readiness, metrics, and the
Gradio page at / (`synergy3DMM.serve.page`).

    app = create_app(ServeSettings())        # uvicorn serves it; app.py does that

| route | answer |
| --- | --- |
| `POST /v1/faces[?dense=true]` | singleImage.py's JSON document for the photo in the multipart field `image` |
| `POST /v1/render?mode=3d` | a picture of `RENDER_MODES` as singleImage.py writes it (JPEG; PNG for solid) |
| `POST /v1/mesh?format=glb&face=0` | one face's mesh (glb, ply; obj as a zip with its MTL and texture) |
| `GET /healthz`, `/readyz`, `/metrics` | alive; models loaded (503 until then); Prometheus text |

Every error is a 4xx (or 503 when busy, with Retry-After) with the body
`{"error": "<one line>"}`. With an API key set, every /v1/ route needs it (`X-API-Key`
or `Authorization: Bearer`), compared in constant time.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import shutil
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from enum import Enum
from typing import Callable

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from synergy3DMM.results import ImageResult
from synergy3DMM.serve import answers
from synergy3DMM.serve.answers import MEDIA_TYPES, MESH_FORMATS, RENDER_MODES
from synergy3DMM.serve.errors import RequestError
from synergy3DMM.serve.metrics import ServiceMetrics
from synergy3DMM.serve.service import LOADING_RETRY_AFTER_S, FaceService
from synergy3DMM.serve.settings import ServeSettings
from synergy3DMM.serve.uploads import FIELD, receive_upload
from utils.errors import SynergyError

logger = logging.getLogger("synergynet.serve")

RenderMode = Enum("RenderMode", {mode: mode for mode in RENDER_MODES}, type=str)  # OpenAPI lists the choices
MeshFormat = Enum("MeshFormat", {fmt: fmt for fmt in ("glb", *(f for f in MESH_FORMATS if f != "glb"))}, type=str)
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FIELD],
    "properties": {FIELD: {"type": "string", "format": "binary", "description": "the photo (any format OpenCV reads)"}},
}}}}}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


class _Metered:
    """ASGI middleware: every HTTP request counted by route (its path template; `page` for
    the Gradio page) and status, with its latency."""

    def __init__(self, app, metrics: ServiceMetrics, routes: set[str], other: str):
        self.app, self.metrics, self.routes, self.other = app, metrics, routes, other

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            label = route.path if isinstance(route, APIRoute) and route.path in self.routes else self.other
            self.metrics.request(label, status, time.perf_counter() - start)


def create_app(settings: ServeSettings, service: FaceService | None = None) -> FastAPI:
    """The application (see the module docstring). The models load in the background when
    the server starts (`/readyz` says when); a `service` given ready is used as it is."""
    metrics = ServiceMetrics()
    service = service or FaceService(settings, listener=metrics)
    metrics.queue.set_function(lambda: service.queue_length)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if not service.ready:
            service.start()
        yield
        await run_in_threadpool(service.close)  # the server has let the requests in flight finish

    app = FastAPI(title="SynergyNet", description="Faces, 3D landmarks, dense meshes and head poses of photos.",
                  version="1", lifespan=lifespan)
    app.state.service, app.state.metrics, app.state.settings = service, metrics, settings

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError):
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(SynergyError)
    async def unusable(_: Request, exc: SynergyError):  # the photo's own problem (e.g. a result not finite)
        return error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body"))
        return error(422, f"{where}: {first.get('msg', 'invalid request')}" if where else first.get("msg", "invalid"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        return error(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception):
        logger.exception("request failed")
        return error(500, f"internal error ({type(exc).__name__})")

    async def require_key(request: Request) -> None:  # async: FastAPI would run a plain def on another thread
        if not settings.api_key:
            return
        given = request.headers.get("x-api-key")
        if given is None and request.headers.get("authorization", "").lower().startswith("bearer "):
            given = request.headers["authorization"][7:].strip()
        if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), settings.api_key.encode()):
            raise RequestError(401, "missing or wrong API key: send it in the X-API-Key header",
                               {"WWW-Authenticate": "Bearer"})

    async def serve(request: Request, dense: bool, answer: Callable[[ImageResult], Response]) -> Response:
        """Admit, receive the upload into a per-request folder, analyse and answer on a
        request thread; the folder and the place are given back when that thread is done."""
        release = service.admit()
        folder = Path(tempfile.mkdtemp(prefix="synergynet-upload-", dir=settings.temp_dir))

        def done() -> None:
            shutil.rmtree(folder, ignore_errors=True)
            release()

        try:
            upload = await receive_upload(request.headers, request.stream(), folder, settings.max_upload_bytes)
        except BaseException:
            done()
            raise

        def run() -> Response:
            try:
                return answer(service.analyse(upload.path.read_bytes(), upload.filename, dense))
            finally:
                done()

        try:
            future = service.call(run)
        except BaseException:
            done()
            raise
        return await asyncio.wrap_future(future)

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])

    @v1.post("/faces", openapi_extra=_UPLOAD_BODY, summary="The faces of a photo: singleImage.py's JSON")
    async def faces(request: Request, dense: bool = Query(False, description="add each face's dense vertices")):
        return await serve(request, dense, lambda result: Response(answers.document(result, dense),
                                                                   media_type="application/json"))

    @v1.post("/render", openapi_extra=_UPLOAD_BODY, summary="A picture of the faces over the photo",
             response_class=Response)
    async def render(request: Request, mode: RenderMode = Query(RenderMode("3d"))):
        def answer(result: ImageResult) -> Response:
            name, data = answers.picture(result, mode.value)
            return Response(data, media_type=MEDIA_TYPES[Path(name).suffix],
                            headers={"Content-Disposition": f'inline; filename="{name}"'})

        return await serve(request, answers.needs_dense(mode.value), answer)

    @v1.post("/mesh", openapi_extra=_UPLOAD_BODY, summary="One face's textured mesh", response_class=Response)
    async def mesh(request: Request, format: MeshFormat = Query(MeshFormat("glb")),  # noqa: A002 - the API's name
                   face: int = Query(0, ge=0, description="which face, in the JSON's order")):
        def answer(result: ImageResult) -> Response:
            name, data = answers.mesh(result, format.value, face)
            return Response(data, media_type=MEDIA_TYPES[Path(name).suffix],
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})

        return await serve(request, True, answer)

    @v1.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def unknown(request: Request, rest: str):
        raise RequestError(404, f"no route {request.method} /v1/{rest}: the routes are POST /v1/faces, /v1/render "
                                "and /v1/mesh")

    app.include_router(v1)

    @app.get("/healthz", summary="Alive")
    async def healthz():
        return {"status": "alive"}

    @app.get("/readyz", summary="Models loaded")
    async def readyz():
        if service.ready:
            return {"status": "ready", "backend": service.pipeline.backend, "device": service.pipeline.device}
        if service.failure:
            return error(503, f"the models could not be loaded: {service.failure}")
        return error(503, "the models are loading", {"Retry-After": str(LOADING_RETRY_AFTER_S)})

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus():
        return Response(metrics.exposition(), media_type=metrics.content_type)

    if settings.page:
        from synergy3DMM.serve.page import mount_page

        app = mount_page(app, service, settings)
    # the service's own routes (the page's are in an application of their own)
    own = {route.path for route in [*v1.routes, *app.routes] if isinstance(route, APIRoute)}
    app.add_middleware(_Metered, metrics=metrics, routes=own, other="page" if settings.page else "other")
    return app


def app_from_environment() -> FastAPI:
    """The application of the settings app.py put in the environment (uvicorn's factory,
    in each worker process)."""
    return create_app(ServeSettings.from_environment())
