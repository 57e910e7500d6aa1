"""Federated training on Flower: sites train one FDS without pooling their data.

`settings` (the `federated:` section of fed.yaml), `site` (a site's data and local training),
`client_app` / `server_app` (Flower's Message API), `strategies` (name → Flower strategy),
`guard` (malformed updates rejected before aggregation), `schema` (the shared codec built from
per-site statistics), `accounting` (ε of server-side DP).
"""
