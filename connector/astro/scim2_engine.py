"""scim2-client's engine on the Astro session: scim2-client builds and checks SCIM messages through the models
(queries, PatchOp writes, deletes); this sends them on connector.astro.engine's AstroSession.

scim2-client ships engines for httpx2, WSGI and ASGI; an engine only has to send a request and hand back the
status, headers and body (`BaseAsyncSCIMClient.request`). Imported only by AstroScimClient when a caller first
needs the models (see connector.astro.engine for why the bulk read does not).
"""

from __future__ import annotations

from typing import Any

import orjson
from scim2_client.client import BaseAsyncSCIMClient
from scim2_client.errors import RequestNetworkException

from connector.astro.engine import Answer, AstroSession, TransportFailure


class AiohttpSCIMClient(BaseAsyncSCIMClient):
    """`AiohttpSCIMClient(session, provider=...)`: scim2-client over an open AstroSession (which the caller closes)."""

    def __init__(self, session: AstroSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session

    def _parse_json(self, response: Any) -> Any:
        return orjson.loads(response.content)

    async def request(self, method: str, url: str, *, params: Any = None, json: Any = None, **kwargs: Any
                      ) -> Answer:
        """Send one request; transport failures become scim2-client's RequestNetworkException."""
        try:
            return await self.session.request(method, url, params=params, json=json, **kwargs)
        except TransportFailure as exc:
            network = RequestNetworkException()
            network.add_note(str(exc))
            raise network from exc
