"""Stands in for one of the service's processes in the devstack tests.

``python stub_service.py MODULE [ARGS]``: the migration exits 0, the key command writes stub keys
to its ``--file`` and exits 0, the sandbox and the API answer 200 to any GET on the port from
their settings' environment variables, the others idle until SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def main(module: str, *args: str) -> None:
    print(f"stub for {module}", flush=True)
    if module == "payments.db.migrate":
        return
    if module == "api.keys":
        path = args[args.index("--file") + 1]
        with open(path, "w") as handle:
            json.dump({"checkout": "psk_stub_checkout", "admin": "psk_stub_admin"}, handle)
        return
    listen = {"devtools.sandbox": "SANDBOX", "api": "API"}.get(module)
    if listen is not None:
        address = (os.environ[f"{listen}_HOST"], int(os.environ[f"{listen}_PORT"]))
        ThreadingHTTPServer(address, _Ok).serve_forever()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main(sys.argv[1], *sys.argv[2:])
