"""The API fixtures of tests/api (migrated session database, module topics, the gate's
test double, a running app with a user) for the reliability tests of the API and CLI."""

from tests.api.conftest import api, api_catalog, api_db, authed, gate, stack  # noqa: F401
