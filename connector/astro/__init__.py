"""Astro, as the connector talks to it: `client` is the one SCIM client (reads and writes, on scim2-client over the
aiohttp `engine`), `reader` the drift audit's bulk read on it, `platform` the Platform API (Team roles), and
`errors` the one error mapping both APIs share."""
