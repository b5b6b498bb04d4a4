"""`ganforge serve`: a small HTTP/JSON API over loaded runs, and the page that uses it (static/).

Stdlib only (ThreadingHTTPServer, bounded as connections.py says): the page needs a handful of JSON
routes and three static files, which a framework would not make shorter. Routes:
    GET  /                                the page;  GET /static/<file>: its script and style
    GET  /api/runs                        the served runs
    GET  /api/runs/<id>                   a run: condition vocabulary, history, eval rows, sample steps, projections
    GET  /api/runs/<id>/samples/<step>    the training sample grid at that step (PNG)
    POST /api/generate                    {run, seed, count, psi, condition[, interpolate]} → PNGs with recipes
                                          (either end may be {projection: P} instead: see request.py)
    POST /api/nearest                     {run, request, index, k} → nearest training images
Runs are named by id (their folder's name), a run's projections (--projection DIR) by the number the
server gave them; no request names a file. Each request is rendered from its own seeded generators
(render.py), so tabs never see each other's images. Every refusal, http.server's
own included (a malformed request line or header, a method other than GET and POST), is a 4xx whose
JSON body {"error": …} is one line.
"""
from __future__ import annotations

import base64
import json
import math
import re
import sys
import time
from http import HTTPStatus
from importlib import resources
from pathlib import Path

from ..errors import ConfigError, GanforgeError
from ..run import load_run
from ..rundir import RunDir
from .connections import BoundedHTTPServer, DeadlineHandler
from .nearest import PIXELS, FeatureSpace, TrainingImages
from .projections import load_projection, owner
from .recipe import FROM_PROJECTION, make_recipe, png_bytes
from .render import Explorer
from .request import MAX_COUNT, MAX_PROJECTIONS, Request, RequestError, decode_json, integer, parse_request

STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
MAX_BODY = 64 * 1024
MAX_NEAREST = 16
HISTORY_POINTS = 400
LOOPBACK = ("127.0.0.1", "localhost")
DIGITS = re.compile(r"[0-9]{1,18}")  # a step in a URL, a Content-Length: ASCII digits, none that int() refuses


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class ServedRun:
    def __init__(self, run_id: str, path: Path, space: FeatureSpace):
        self.id = run_id
        self.explorer = Explorer(load_run(path))
        self.training = TrainingImages(self.explorer.run, space)

    @property
    def run(self):
        return self.explorer.run

    def summary(self) -> dict:
        run, conditions = self.run, self.run.conditions
        shape = run.info["data_shape"]
        return {"id": self.id, "name": run.path.name, "step": run.step, "resolution": shape[-1], "channels": shape[0],
                "z_dim": run.z_dim, "two_stage": self.explorer.two_stage, "ema": run.ema_generator is not None,
                "condition": conditions.kind if conditions else None,
                "names": conditions.names if conditions and conditions.kind != "text" else [],
                "groups": conditions.groups if conditions and conditions.kind == "tags" else {},
                "objective": run.config.objective, "generator_sha256": self.explorer.digest}

    def projections(self) -> list[dict]:
        """The run's projections as the page lists them: number, name, the picture and its reconstruction."""
        out = []
        for number, found in enumerate(self.explorer.projections):
            rendered = self.explorer.render(Request(0, 1, 1.0, None, projection=number))
            out.append({"id": number, "name": found.name, "rms_error": found.rms_error, "label": rendered.labels[0],
                        "picture": _data_url(png_bytes(found.picture)),
                        "reconstruction": _data_url(png_bytes(rendered.images[0], note=FROM_PROJECTION))})
        return out

    def details(self) -> dict:
        losses = [{"step": row["step"], "d_loss": row["d_loss"], "g_loss": row["g_loss"]}
                  for row in self.run.history
                  if "step" in row and _finite(row.get("d_loss")) and _finite(row.get("g_loss"))]
        stride = max(1, len(losses) // HISTORY_POINTS)
        # JSON has no NaN: a metric that came out non-finite shows as an empty cell
        evals = [{key: value if _finite(value) or not isinstance(value, float) else None
                  for key, value in {"step": row.get("step"), **row["eval"]}.items()}
                 for row in self.run.evals]
        return {**self.summary(), "losses": losses[::stride], "evals": evals,
                "sample_steps": sorted(RunDir(self.run.path).sample_grids()), "projections": self.projections()}


class ExplorerServer(BoundedHTTPServer):
    def __init__(self, run_dirs: list[str | Path], host: str = "127.0.0.1", port: int = 7860, verbose: bool = False,
                 features: str = PIXELS, projections: list[str | Path] = ()):
        space = FeatureSpace(features)
        self.runs: dict[str, ServedRun] = {}
        for path in run_dirs:
            base = Path(path).resolve().name
            run_id, n = base, 2
            while run_id in self.runs:
                run_id, n = f"{base}-{n}", n + 1
            self.runs[run_id] = ServedRun(run_id, Path(path), space)
        if len(projections) > MAX_PROJECTIONS:
            raise ConfigError(f"{len(projections)} --projection folders; serve at most {MAX_PROJECTIONS}")
        for folder in projections:
            found = load_projection(folder)
            owner(found, folder, list(self.runs.values())).explorer.projections.append(found)
        self.verbose = verbose
        super().__init__((host, port), Handler)
        port = self.server_address[1]
        # On loopback, answer only requests addressed to loopback: a web page elsewhere that rebinds its
        # own DNS name to 127.0.0.1 would otherwise read this server's answers.
        self.allowed_hosts = {f"{name}:{port}" for name in LOOPBACK} if host in LOOPBACK else None

    def served(self, run_id) -> ServedRun:
        if not isinstance(run_id, str) or run_id not in self.runs:
            raise LookupError(f"no run '{str(run_id)[:60]}' is served; served: {', '.join(self.runs)}")
        return self.runs[run_id]


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def generate(served: ServedRun, body: dict) -> dict:
    request = parse_request(body)
    started = time.perf_counter()
    rendered = served.explorer.render(request)
    canonical = request.to_dict()

    def png(image, index: int, stage: int) -> str:
        if request.uses_projection:  # its z is not in the request: no recipe could replay it
            return _data_url(png_bytes(image, note=FROM_PROJECTION))
        return _data_url(png_bytes(image, make_recipe(served.explorer, canonical, index, stage)))

    images = []
    for i, image in enumerate(rendered.images):
        entry = {"png": png(image, i, 2), "label": rendered.labels[i], "index": i}
        if rendered.stage1 is not None:
            entry["stage1"] = png(rendered.stage1[i], i, 1)
        images.append(entry)
    return {"run": served.id, "step": served.run.step, "request": canonical, "images": images,
            "seconds": round(time.perf_counter() - started, 4)}


def nearest(served: ServedRun, body: dict) -> dict:
    unknown = set(body) - {"run", "request", "index", "k"}
    if unknown:
        raise RequestError(f"unknown field(s) {', '.join(sorted(unknown))}; valid: run, request, index, k")
    request = parse_request(body.get("request"))
    index = integer(body.get("index", 0), "index", 0, request.count - 1)
    k = integer(body.get("k", 6), "k", 1, MAX_NEAREST)
    image = served.explorer.render(request).images[index]
    found, distances = served.training.nearest(image, k)
    return {"distances": [round(d, 3) for d in distances], "yardstick": round(served.training.yardstick(), 3),
            "features": served.training.space.name, "images": [_data_url(png_bytes(x)) for x in found]}


POST_ROUTES = {"/api/generate": generate, "/api/nearest": nearest}


class Handler(DeadlineHandler):
    server: ExplorerServer
    server_version = "ganforge"
    default_request_version = "HTTP/1.0"  # so the answer to a malformed request line has a status line too

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # http.server answers a method it finds no do_<METHOD> for with a 501
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command[:20]} is not served here; use GET or POST")

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals, as this API's one-line JSON instead of its HTML page."""
        self.log_error("code %d, message %s", code, message)
        self.close_connection = True
        self._error(code, message or HTTPStatus(code).phrase)

    def log_message(self, format, *args):  # noqa: A002 — the base class's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _guarded(self, action) -> None:
        try:
            allowed = self.server.allowed_hosts
            if allowed is not None and self.headers.get("Host") not in allowed:
                raise PermissionError(f"this server answers requests to {' or '.join(sorted(allowed))} only")
            action()
        except (TimeoutError, ConnectionError):  # the client's side: see connections.py
            raise
        except PermissionError as err:
            self._error(HTTPStatus.FORBIDDEN, str(err))
        except LookupError as err:
            self._error(HTTPStatus.NOT_FOUND, str(err.args[0]))
        except GanforgeError as err:
            self._error(HTTPStatus.BAD_REQUEST, str(err))
        except Exception as err:  # noqa: BLE001 — one bad request must not take the server down
            print(f"ganforge serve: error in {self.command} {self.path}: {err!r}", file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {err}")

    def do_GET(self):  # noqa: N802 — http.server's naming
        self._guarded(self._get)

    def do_POST(self):  # noqa: N802
        self._guarded(self._post)

    def _get(self) -> None:
        path = self.path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        if path == "/":
            parts = ["static", "index.html"]
        if len(parts) == 2 and parts[0] == "static" and parts[1] in STATIC:
            body = resources.files(__package__).joinpath("static", parts[1]).read_bytes()
            return self._send(HTTPStatus.OK, body, STATIC[parts[1]])
        if parts == ["api", "runs"]:
            return self._json(HTTPStatus.OK, {"runs": [r.summary() for r in self.server.runs.values()],
                                              "max_count": MAX_COUNT})
        if len(parts) == 3 and parts[:2] == ["api", "runs"]:
            return self._json(HTTPStatus.OK, self.server.served(parts[2]).details())
        if len(parts) == 5 and parts[:2] == ["api", "runs"] and parts[3] == "samples":
            grids = RunDir(self.server.served(parts[2]).run.path).sample_grids()
            grid = grids.get(int(parts[4])) if DIGITS.fullmatch(parts[4]) else None
            if grid is None:
                raise LookupError(f"run '{parts[2]}' has no sample grid at step {parts[4][:40]}")
            return self._send(HTTPStatus.OK, grid.read_bytes(), "image/png")
        raise LookupError(f"no such page: {path[:80]}")

    def _post(self) -> None:
        route = POST_ROUTES.get(self.path)
        if route is None:
            raise LookupError(f"no such API route: {self.path[:80]}")
        given = self.headers.get("Content-Length") or "0"
        length = int(given) if DIGITS.fullmatch(given.strip()) else -1
        if not 0 < length <= MAX_BODY:
            raise RequestError(f"the request body must be JSON of 1 to {MAX_BODY} bytes, with its length in "
                               f"Content-Length (got {given[:40]!r})")
        try:
            body = decode_json(self.rfile.read(length))
        except RequestError as err:
            raise RequestError(f"the request body is not JSON this server reads ({err})") from None
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        self._json(HTTPStatus.OK, route(self.server.served(body.get("run")), body))


def serve(run_dirs: list[str | Path], host: str = "127.0.0.1", port: int = 7860, verbose: bool = False,
          features: str = PIXELS, projections: list[str | Path] = ()) -> None:
    """Serve the explorer page until Ctrl-C."""
    if host not in LOOPBACK:
        print(f"ganforge serve: warning: listening on {host}, so other machines can reach this page and make "
              f"this computer generate images; there is no login. Use the default 127.0.0.1 unless you mean it.",
              file=sys.stderr)
    try:
        server = ExplorerServer(run_dirs, host, port, verbose, features, projections)
    except OSError as err:
        raise GanforgeError(f"cannot listen on {host}:{port} ({err.strerror}); choose another --port") from None
    served = f"{len(server.runs)} run(s)" + (f" and {len(projections)} projection(s)" if projections else "")
    print(f"ganforge serve: {served} at http://{host}:{server.server_address[1]}/  (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C is how a page server ends: not an error
        print("ganforge serve: stopped")
    finally:
        server.server_close()
