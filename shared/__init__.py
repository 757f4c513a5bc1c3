"""Library side of the app: events, routes, the ledger, settings and the engine that ties them."""
