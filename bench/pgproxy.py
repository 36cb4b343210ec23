#!/usr/bin/env python3
"""The database outage of `make bench`: a TCP proxy in front of PostgreSQL that can go away.

bench/run.sh points an auth-server at this proxy instead of at PostgreSQL, then makes the
database unreachable for a while without touching the machine's PostgreSQL:

  SIGUSR1  down: every proxied connection is cut at once (both sides reset), and new
           connections are, by --mode:
             refuse     refused (the listening socket is closed: ECONNREFUSED, like a stopped
                        server or a closed port);
             hang       accepted and never answered (like a partition or a dead host: the
                        client waits for its own time-outs);
             blackhole  like hang, and existing connections are not reset but silenced (bytes
                        in both directions are dropped), as a partition really behaves.
  SIGUSR2  up: connections held by hang/blackhole are reset, and new connections are proxied
           again (the listening socket is reopened for refuse).
  SIGTERM  stop (everything is closed).

Listens on 127.0.0.1 only and forwards only to a loopback address. Prints one line per state
change (`pgproxy up|down <unix time>`) so the run's log shows when the outage really happened.

Usage: pgproxy.py --listen PORT [--target 127.0.0.1:5432] [--mode refuse|hang|blackhole]
"""

import argparse
import asyncio
import ipaddress
import signal
import socket
import struct
import sys
import time


def log(*parts):
    print("pgproxy", *parts, f"{time.time():.3f}", flush=True)


def cut(writer):
    """Closes a connection with a reset (SO_LINGER 0), as a vanished peer or firewall would."""
    sock = writer.transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Proxy:
    def __init__(self, listen_port, target_host, target_port, mode):
        self.listen_port = listen_port
        self.target_host = target_host
        self.target_port = target_port
        self.mode = mode
        self.down = False
        self.server = None
        # Proxied connections: (client writer, upstream writer); held ones: client writers.
        self.pairs = set()
        self.held = set()
        self.proxied_total = 0

    async def listen(self):
        self.server = await asyncio.start_server(
            self.accept, "127.0.0.1", self.listen_port, reuse_address=True, backlog=512
        )

    async def accept(self, reader, writer):
        if self.down:
            # hang / blackhole: the connection is accepted and never answered.
            self.held.add(writer)
            try:
                while await reader.read(65536):
                    pass
            except (ConnectionError, OSError):
                pass
            finally:
                self.held.discard(writer)
                cut(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            cut(writer)
            return
        pair = (writer, up_writer)
        self.pairs.add(pair)
        self.proxied_total += 1
        try:
            await asyncio.gather(self.pipe(reader, up_writer), self.pipe(up_reader, writer))
        finally:
            self.pairs.discard(pair)
            writer.close()
            up_writer.close()

    async def pipe(self, reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self.down:
                    continue  # blackhole: dropped
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One side ended (or was cut): end the other politely; a cut one is already gone.
            writer.close()

    def go_down(self):
        if self.down:
            return
        self.down = True
        if self.mode != "blackhole":
            for client, upstream in list(self.pairs):
                cut(client)  # RST: the connection is cut, not closed politely
                cut(upstream)
        if self.mode == "refuse" and self.server is not None:
            self.server.close()
            self.server = None
        log("down", f"mode={self.mode}", f"open_connections={len(self.pairs)}")

    async def go_up(self):
        if not self.down:
            return
        self.down = False
        for writer in list(self.held):
            cut(writer)
        if self.mode == "blackhole":
            for client, upstream in list(self.pairs):
                cut(client)
                cut(upstream)
        if self.server is None:
            await self.listen()
        log("up")


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", default="127.0.0.1:5432")
    parser.add_argument("--mode", choices=["refuse", "hang", "blackhole"], default="hang")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit("pgproxy: the target must be a loopback address")
    proxy = Proxy(args.listen, host, int(port), args.mode)
    await proxy.listen()
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, proxy.go_down)
    loop.add_signal_handler(signal.SIGUSR2, lambda: asyncio.ensure_future(proxy.go_up()))
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    loop.add_signal_handler(signal.SIGINT, stopped.set)
    log("listening", f"127.0.0.1:{args.listen}", f"target={args.target}", f"mode={args.mode}")
    await stopped.wait()
    for client, upstream in list(proxy.pairs):
        cut(client)
        cut(upstream)
    log("stopped", f"proxied={proxy.proxied_total}")


if __name__ == "__main__":
    asyncio.run(main())
