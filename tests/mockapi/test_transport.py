"""HTTP/1.1 keep-alive, parallel clients with latency, clean stop."""

from __future__ import annotations

import threading

import requests

from datasync_cli.mockapi import MockConfig, running_mock

from .conftest import StartMock, keyed


def test_keep_alive_reuses_one_connection(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock()
    for _ in range(5):
        r = http.get(server.url + "/events", headers=keyed(server), params={"limit": 500})
        assert r.status_code == 200 and r.headers["Connection"] == "keep-alive"
    assert server.counters.connections == 1


def test_parallel_clients_are_served_concurrently(start_mock: StartMock) -> None:
    server = start_mock(latency_ms=300, latency_jitter_ms=50)
    statuses: list[int] = []

    def client() -> None:
        with requests.Session() as s:
            statuses.append(s.get(server.url + "/events", headers=keyed(server)).status_code)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 6
    assert server.counters.max_in_flight >= 2


def test_stop_closes_idle_keep_alive_connections() -> None:
    with requests.Session() as http:
        with running_mock(MockConfig(events=100)) as server:
            assert http.get(server.url, headers=keyed(server)).status_code == 200
            url = server.url
        try:
            http.get(url, timeout=2)
            reached = True
        except requests.ConnectionError:
            reached = False
    assert not reached
