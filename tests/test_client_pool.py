"""The API client's connection pool and proxies: sized and resolved when the client is built."""

from __future__ import annotations

from django_papay.services.connections import get_client


def test_the_pool_keeps_a_connection_for_each_call_in_flight(papay, settings):
    settings.PAPAY = {**settings.PAPAY, "BULK_CONCURRENCY": 32}
    adapter = get_client().session.get_adapter(settings.PAPAY["BASE_URL"])
    assert adapter._pool_maxsize == 32  # requests' default is 10: calls 11 to 32 would each open a connection


def test_proxies_are_read_once_for_wechat_pay_s_host(papay, settings, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "")
    settings.PAPAY = {**settings.PAPAY, "BULK_CONCURRENCY": 7}  # a client of its own
    session = get_client().session
    assert session.trust_env is False
    assert set(session.proxies.values()) == {"http://proxy.invalid:3128"}
