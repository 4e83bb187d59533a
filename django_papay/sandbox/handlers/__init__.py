"""The endpoints, one module per family; each handler is ``(state, request, match) -> Reply``.

``match`` is the route's match on the path: its named groups are the path's ``{name}`` parameters.
A handler refuses by raising ``ApiError``; headers and the merchant's signature were checked before it
runs (merchant-API routes only). Handlers import the state below them, never the routes or the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..records import RecordedRequest
from ..replies import Reply
from ..state import SandboxState

Handler = Callable[[SandboxState, RecordedRequest, "re.Match[str]"], Reply]

__all__ = ["Handler"]
