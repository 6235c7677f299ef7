"""The API's routers, one per area of blueprint §6; every path is under `PREFIX`."""

PREFIX = "/v1"
