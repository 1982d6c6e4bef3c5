#!/usr/bin/env python3
"""delay-proxy.py TARGET_PORT RTT_MS: a TCP proxy on 127.0.0.1 that adds a round-trip time.

For benches/compare-openssh.sh (row g): these machines have no netem, so this holds every
chunk RTT_MS/2 in each direction, in order, and emulates TCP's own handshake, which on
loopback takes no time: a client's first byte reaches the server 1.5 RTT after it
connected (it can send only once SYN and SYN-ACK have gone both ways, with the ACK), and a
server's first byte reaches the client 2 RTT after (the server accepts on that ACK). Prints the port it listens on, then serves until killed.
Standard library only.
"""

import asyncio
import socket
import sys
import time


async def pipe(reader, writer, one_way, not_before):
    """Copies reader to writer, each chunk delivered one_way seconds after it was read
    (and never before not_before, a time.monotonic() value)."""
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, chunk = await queue.get()
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if chunk is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    delivery = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            due = max(time.monotonic(), not_before) + one_way
            await queue.put((due, chunk or None))
            if not chunk:
                break
        await delivery
    except (ConnectionError, OSError):
        delivery.cancel()


async def serve(target_port, rtt):
    async def handle(client_reader, client_writer):
        accepted = time.monotonic()
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        for w in (client_writer, server_writer):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            pipe(client_reader, server_writer, rtt / 2, accepted + rtt),
            pipe(server_reader, client_writer, rtt / 2, accepted + 1.5 * rtt),
        )
        for w in (client_writer, server_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: delay-proxy.py TARGET_PORT RTT_MS")
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2]) / 1000))


if __name__ == "__main__":
    main()
