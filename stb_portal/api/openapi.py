"""A small route registry for `/api/v1`: each operation is declared once with its
models, and both the aiohttp routes and the OpenAPI 3.1 document come from it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from xueliang import __version__
from xueliang.errors import InvalidInput

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
_REF = "#/components/schemas/{model}"


@dataclass(frozen=True, slots=True)
class Reply:
    """One documented response: a JSON model, an event stream, or nothing."""

    description: str
    model: type[BaseModel] | None = None
    media_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    name: str
    summary: str
    handler: Handler
    replies: dict[int, Reply]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    secured: bool = True
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)


class Api:
    def __init__(self, title: str, prefix: str, error_model: type[BaseModel]) -> None:
        self.title = title
        self.prefix = prefix
        self.error_model = error_model
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        name: str,
        summary: str,
        replies: dict[int, Reply],
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        secured: bool = True,
        path_params: dict[str, dict[str, Any]] | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(method, path, name, summary, handler, replies, body, query, secured,
                          path_params or {})
            )  # fmt: skip
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for op in self.operations:
            app.router.add_route(op.method, op.path, op.handler, name=op.name)

    def document(self) -> dict[str, Any]:
        models: set[type[BaseModel]] = {self.error_model}
        for op in self.operations:
            models.update(r.model for r in op.replies.values() if r.model is not None)
            if op.body is not None:
                models.add(op.body)
        keyed: list[tuple[type[BaseModel], JsonSchemaMode]] = [
            (m, "validation" if _is_request(m, self) else "serialization") for m in models
        ]
        refs, schema = models_json_schema(
            sorted(keyed, key=lambda k: k[0].__name__),
            ref_template=_REF,
        )
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = self._operation(op, refs)
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": __version__},
            "servers": [{"url": self.prefix}],
            "paths": paths,
            "components": {
                "schemas": schema.get("$defs", {}),
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
        }

    def _operation(self, op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = {"operationId": op.name, "summary": op.summary, "responses": {}}
        params = [
            {"name": name, "in": "path", "required": True, "schema": schema}
            for name, schema in op.path_params.items()
        ]
        if op.query is not None:
            query_schema = op.query.model_json_schema()
            required = set(query_schema.get("required", []))
            params += [
                {"name": name, "in": "query", "required": name in required, "schema": prop}
                for name, prop in query_schema["properties"].items()
            ]
        if params:
            doc["parameters"] = params
        if op.body is not None:
            doc["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        doc["security"] = [{"bearer": []}] if op.secured else []
        for status, reply in sorted(op.replies.items()):
            entry: dict[str, Any] = {"description": reply.description}
            if reply.model is not None:
                entry["content"] = {
                    reply.media_type: {"schema": refs[(reply.model, "serialization")]}
                }
            elif reply.media_type != "application/json":
                entry["content"] = {reply.media_type: {"schema": {"type": "string"}}}
            doc["responses"][str(status)] = entry
        return doc


def _is_request(model: type[BaseModel], api: Api) -> bool:
    return any(op.body is model for op in api.operations)


async def body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as `model`; InvalidInput naming the field otherwise."""
    try:
        raw = await request.read()
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body", "must be a JSON object") from None
    return validated(model, data)


def query(request: web.Request, model: type[M]) -> M:
    return validated(model, dict(request.query))


def validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidInput(where, first["msg"]) from None


def json_reply(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )
