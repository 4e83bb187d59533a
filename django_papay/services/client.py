"""The API client for the current settings, built with the key source they name.

``client.py`` knows HTTP but no models; this is where a client gets its keys, once, when it is built:
the configured WeChat Pay public key (``ConfiguredKeys``), or with ``PAPAY["PLATFORM_CERTIFICATES"]`` the
platform certificates stored in the database as well (``StoredKeys``, which downloads them when due).
"""

from __future__ import annotations

import threading

from .. import conf
from ..client import ConfiguredKeys, KeyStore, WeChatPayClient
from .certificates import StoredKeys

_clients: dict[tuple, WeChatPayClient] = {}
_clients_lock = threading.Lock()
_MAX_CLIENTS = 8  # settings rarely change outside tests; don't keep a pool per past configuration


def key_source(config: conf.ClientSettings) -> KeyStore:
    """The keys an API client verifies WeChat Pay's answers with: the public key, the certificates, or both."""
    if config.platform_certificates:
        return StoredKeys(config, may_download=True)
    return ConfiguredKeys(dict(config.wechatpay_public_keys))


def get_client() -> WeChatPayClient:
    """The client for the current settings; one per configuration, so its connections are reused."""
    config = conf.client_settings()
    with _clients_lock:
        client = _clients.get(config.identity())
        if client is None:
            if len(_clients) >= _MAX_CLIENTS:
                for stale in _clients.values():
                    stale.session.close()
                _clients.clear()
            client = _clients[config.identity()] = WeChatPayClient(config, keys=key_source(config))
        return client
