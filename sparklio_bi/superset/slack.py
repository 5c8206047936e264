"""Superset's Slack calls sent elsewhere than https://slack.com/api/ (SPARKLIO_SLACK_API_URL: a
Slack-compatible relay, or the tests' loopback server). Superset's get_slack_client makes
slack_sdk's WebClient with a token and a proxy only, so the address is that constructor's default
`base_url`, replaced here; internals.py checks the assumption ("slack-client")."""
from __future__ import annotations

import inspect


def is_sdk_client(client_class) -> bool:
    """`client_class` is slack_sdk's client, and its constructor has a default base_url."""
    from slack_sdk.web.base_client import BaseClient  # Superset's; internals imports this module without it

    default = inspect.signature(BaseClient.__init__).parameters.get("base_url")
    return isinstance(client_class, type) and issubclass(client_class, BaseClient) \
        and default is not None and str(default.default).startswith("http")


def point_slack_at(url: str) -> None:
    """Every slack_sdk client made from now on in this process calls `url`."""
    from slack_sdk.web.base_client import BaseClient

    init = BaseClient.__init__
    names = init.__code__.co_varnames[1:init.__code__.co_argcount]
    defaults = list(init.__defaults__)
    defaults[names.index("base_url") - (len(names) - len(defaults))] = url
    init.__defaults__ = tuple(defaults)
