"""A 405 lists every method its path takes, whichever route the request reached first.

Starlette answers a method no route takes with the ``Allow`` header of the first route whose path
matched, so ``DELETE /v1/items/x`` said ``Allow: PATCH`` although the same path also takes PUT
(they are two routes: two handlers, two OpenAPI operations). Clients and schema checkers read
``Allow`` to learn what a resource supports; it must be the whole list.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from recsmith.serving.strict_json import StrictJSONRoute


class AllowEveryMethod(StrictJSONRoute):
    """An APIRoute whose 405 names the methods of every route of this class on its path.

    The routes register their methods by path template as they are built (once, at import): the
    router an app nests them in is not a flat list to search at request time. Its bodies are
    decoded strictly (``strict_json``), as every route taking a body but ingest's must be.
    """

    _by_path: ClassVar[dict[str, set[str]]] = {}
    #: ``handle`` refuses only a method the route does not take: a request the route matched
    #: in full it passes on as ``APIRoute.handle`` does (``fast_lane.Shortcut``)
    REFUSES_METHODS_ONLY: ClassVar[bool] = True

    def __init__(self, path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(path, *args, **kwargs)
        self._by_path.setdefault(self.path, set()).update(self.methods or ())

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            allowed = ", ".join(sorted(self._by_path[self.path]))
            raise HTTPException(405, headers={"Allow": allowed})
        await super().handle(scope, receive, send)
