"""Connections to WeChat Pay: one API client per configuration and process, with its pool and its key source.

The protocol's client (``django_papay/client.py``) knows HTTP but no models; this is where a client gets its
keys, once, when it is built: the configured WeChat Pay public key (``ConfiguredKeys``), or with
``PAPAY["PLATFORM_CERTIFICATES"]`` the platform certificates stored in the database as well (``StoredKeys``,
which downloads them when due).
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from requests.utils import get_environ_proxies

from .. import conf
from ..client import ConfiguredKeys, KeyStore, WeChatPayClient
from .certificates import StoredKeys

_clients: dict[tuple, WeChatPayClient] = {}
_clients_lock = threading.Lock()
_MAX_CLIENTS = 8  # settings rarely change outside tests; don't keep a pool per past configuration


def _forget_clients_in_child() -> None:
    """A forked process (gunicorn --preload, multiprocessing) starts without the parent's clients.

    Their sessions' keep-alive sockets are the parent's too: a child sending on one would read answers
    meant for the parent (and the parent the child's). The child builds its own on first use. The inherited
    sessions are dropped, not closed: closing only ever closes the child's copy of the sockets, but there is
    nothing to say to the server from here. The lock is new too: another thread may have held it at the fork.
    """
    global _clients, _clients_lock
    _clients = {}
    _clients_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_clients_in_child)


def key_source(config: conf.ClientSettings) -> KeyStore:
    """The keys an API client verifies WeChat Pay's answers with: the public key, the certificates, or both."""
    if config.platform_certificates:
        return StoredKeys(config, may_download=True)
    return ConfiguredKeys(dict(config.wechatpay_public_keys))


def get_client() -> WeChatPayClient:
    """The client for the current settings; one per configuration and process, so its connections are reused."""
    config = conf.client_settings()
    pool_size = conf.bulk_concurrency()
    identity = (config.identity(), pool_size)
    with _clients_lock:
        client = _clients.get(identity)
        if client is None:
            if len(_clients) >= _MAX_CLIENTS:
                for stale in _clients.values():
                    stale.session.close()
                _clients.clear()
            session = new_session(config, pool_size)
            client = _clients[identity] = WeChatPayClient(config, session=session, keys=key_source(config))
        return client


def new_session(config: conf.ClientSettings, pool_size: int) -> requests.Session:
    """A session that keeps a connection for each of BULK_CONCURRENCY calls in flight, proxies resolved once.

    requests keeps 10 connections per host by default; past that every call in flight pays a new TLS
    handshake. And with ``trust_env`` it reads the proxy environment (and ~/.netrc) again on every call:
    the proxies are looked up here once for WeChat Pay's hosts instead (HTTPS_PROXY, NO_PROXY as usual;
    REQUESTS_CA_BUNDLE read here too, and PAPAY["CA_BUNDLE"] passed per call still wins over it).
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(pool_size, DEFAULT_POOLSIZE))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False
    # What trust_env gave when PAPAY["CA_BUNDLE"] is not set (a call's own ``verify`` still wins).
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    for base_url in filter(None, (config.base_url, config.backup_base_url)):
        parts = urlsplit(base_url)
        proxies = get_environ_proxies(base_url)  # {} when NO_PROXY covers the host
        proxy = proxies.get(parts.scheme) or proxies.get("all")
        if proxy:
            session.proxies[f"{parts.scheme}://{parts.hostname}"] = proxy
    return session
