"""flows/with_server.py in-process: the health check it waits on, the server command it starts,
how it stops a server that will not stop, and its usage line (the real server and a command
run against it: tests/pipeline/test_prefect_flows.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import flows.with_server as with_server


def serving(body: bytes):
    """An HTTP server on a free loopback port in a thread, answering every GET with `body`."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            """Silent: http.server's request log would fill the test output."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(("body", "healthy"), [(b"true", True), (b"false", False), (b"<", False)])
def test_healthy_only_when_the_api_answers_true(body, healthy):
    server = serving(body)
    try:
        assert with_server._healthy(f"http://127.0.0.1:{server.server_port}/api") is healthy
    finally:
        server.shutdown()
        server.server_close()


def test_a_port_nobody_listens_on_is_not_healthy():
    assert with_server._healthy(f"http://127.0.0.1:{with_server._free_port()}/api") is False


def test_the_server_command_is_prefects_api_app_on_loopback_at_the_port():
    cmd = with_server._server_command(4321)
    option = {cmd[i]: cmd[i + 1] for i in range(len(cmd) - 1) if cmd[i].startswith("--")}
    assert cmd[1:3] == ["-m", "uvicorn"]
    assert (option["--host"], option["--port"]) == ("127.0.0.1", "4321")
    module, factory = option["--factory"].split(":")
    assert factory == "create_app" and importlib.util.find_spec(module)  # Prefect's API app


class Stubborn:
    """A server process that ignores SIGTERM: wait() times out until it is killed."""

    def __init__(self):
        self.calls: list[str] = []

    def poll(self):
        return None

    def terminate(self):
        self.calls.append("terminate")

    def kill(self):
        self.calls.append("kill")

    def wait(self, timeout=None):
        self.calls.append(f"wait {timeout}")
        if "kill" not in self.calls:
            raise subprocess.TimeoutExpired("server", timeout)
        return -9


def test_a_server_that_ignores_sigterm_is_killed_after_the_stop_timeout():
    server = Stubborn()
    with_server._stop(server)
    assert server.calls == ["terminate", f"wait {with_server.STOP_SECONDS}", "kill", "wait None"]


def test_without_a_command_it_prints_its_usage_and_exits_2(capsys):
    assert with_server.main([]) == 2
    assert capsys.readouterr().err == "usage: python -m flows.with_server <command> [args...]\n"
