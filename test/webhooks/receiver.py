#!/usr/bin/env python3
"""A webhook receiver for witn's tests, on 127.0.0.1 only (Python's standard library).

It checks every request's Standard Webhooks signature (webhook-id, webhook-timestamp,
webhook-signature: v1,base64(HMAC-SHA256(key, id.timestamp.body)), key = base64 after whsec_)
and appends one JSON line per request to --log: path, id, timestamp, whether the signature is
valid, the body's type, and when it arrived. HTTP/1.1 with keep-alive, so that the delivery
worker's connections are reused.

What it answers depends on the path:
  /ok              204
  /status/N        HTTP N (500, 404, 302 with a Location, ...)
  /flaky/N         500 for the first N requests of each webhook-id, then 200
  /slow/S          waits S seconds, then 200 (a receiver that hangs past witn.webhook_timeout)
  /big/MB          200 with a body of MB megabytes
  /stats           (GET) {"requests": n, "valid": n, "ids": n distinct}

  python3 receiver.py --port 0 --port-file F --log L --secret whsec_... [--secret ...]
                     [--tls-cert C --tls-key K]   (HTTPS with that certificate)
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import time


def signature_ok(secrets, msg_id, timestamp, body, header):
    if not msg_id or not timestamp or not header:
        return False
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    for secret in secrets:
        key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for part in header.split(" "):
            version, _, sig = part.partition(",")
            if version == "v1" and hmac.compare_digest(sig, expected):
                return True
    return False


class Receiver:
    def __init__(self, secrets, log_path):
        self.secrets = secrets
        self.log = open(log_path, "a", buffering=1)
        self.requests = 0
        self.valid = 0
        self.ids = set()
        self.seen = {}

    def record(self, path, headers, body, ok):
        msg_id = headers.get("webhook-id", "")
        try:
            kind = json.loads(body).get("type")
        except Exception:
            kind = None
        self.requests += 1
        self.valid += ok
        self.ids.add(msg_id)
        self.seen[(path, msg_id)] = self.seen.get((path, msg_id), 0) + 1
        self.log.write(json.dumps({"path": path, "id": msg_id, "timestamp": headers.get("webhook-timestamp"),
                                   "valid": ok, "type": kind, "at": time.time(),
                                   "user_agent": headers.get("user-agent")}) + "\n")

    async def handle(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                if method == "GET" and path == "/stats":
                    out = json.dumps({"requests": self.requests, "valid": self.valid, "ids": len(self.ids)}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))
                    await writer.drain()
                    continue
                ok = signature_ok(self.secrets, headers.get("webhook-id"), headers.get("webhook-timestamp"),
                                  body, headers.get("webhook-signature"))
                self.record(path, headers, body, ok)
                parts = path.strip("/").split("/")
                status, extra, payload = 204, b"", b""
                if parts[0] == "status":
                    status = int(parts[1])
                    if 300 <= status < 400:
                        extra = b"Location: http://127.0.0.1:1/elsewhere\r\n"
                    payload = b"receiver says no"
                elif parts[0] == "flaky":
                    status = 500 if self.seen[(path, headers.get("webhook-id", ""))] <= int(parts[1]) else 200
                elif parts[0] == "slow":
                    await asyncio.sleep(float(parts[1]))
                    status = 200
                elif parts[0] == "big":
                    size = int(parts[1]) * 1024 * 1024
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                    chunk = b"x" * 65536
                    sent = 0
                    try:
                        while sent < size:
                            writer.write(chunk)
                            await writer.drain()
                            sent += len(chunk)
                    except (ConnectionError, asyncio.CancelledError):
                        pass
                    break
                reason = {200: b"OK", 204: b"No Content", 500: b"Internal Server Error"}.get(status, b"Status")
                writer.write(b"HTTP/1.1 %d %s\r\n%sContent-Length: %d\r\n\r\n%s" % (status, reason, extra, len(payload), payload))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log", required=True)
    p.add_argument("--secret", action="append", default=[])
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    a = p.parse_args()
    r = Receiver(a.secret, a.log)
    context = None
    if a.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(a.tls_cert, a.tls_key)
    server = await asyncio.start_server(r.handle, "127.0.0.1", a.port, backlog=1024, ssl=context)
    port = server.sockets[0].getsockname()[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.rename(a.port_file + ".tmp", a.port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
