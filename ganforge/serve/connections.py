"""How `ganforge serve` bounds its clients: a deadline for each request, a bound on threads, and quiet
goodbyes.

http.server gives each connection a thread that blocks reading the request with no deadline, so a
client that sends half a request holds a thread for good. Here:
- a request (line, headers and body) must arrive within `request_timeout` seconds in all, however slowly
  its bytes trickle in (a socket timeout alone restarts with every byte), and its answer must be taken
  within the same time; a connection past its time is closed (as http.server closes one on a timeout);
- at most `max_connections` connections have a thread. When all are taken, the connection that has
  waited longest for its request is dropped to make room, so stalled clients give way to new ones;
  connections beyond that wait in the kernel's listen queue, without a thread;
- a client that leaves (broken pipe, reset) or lets its time run out is dropped without a traceback.
"""
from __future__ import annotations

import io
import math
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Waiting:
    """The connections whose thread is waiting for request bytes, so the server can drop the oldest."""

    def __init__(self):
        self._readers: set[RequestReader] = set()
        self._lock = threading.Lock()

    def add(self, reader: RequestReader) -> None:
        with self._lock:
            self._readers.add(reader)

    def discard(self, reader: RequestReader) -> None:
        with self._lock:
            self._readers.discard(reader)

    def drop_oldest(self) -> None:
        """Drop the connection whose request began first (its read fails at once); none waiting: nothing."""
        with self._lock:
            if not self._readers:
                return
            oldest = min(self._readers, key=lambda reader: reader.deadline)
            self._readers.discard(oldest)
        oldest.dropped = True
        try:
            oldest.sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # the client closed it already
            pass


class RequestReader(io.RawIOBase):
    """A connection's socket as a file whose reads stop at the request's deadline."""

    def __init__(self, sock: socket.socket, waiting: Waiting):
        self.sock, self.waiting = sock, waiting
        self.deadline = math.inf
        self.dropped = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.sock.settimeout(left)
        self.waiting.add(self)
        try:
            count = self.sock.recv_into(buffer)
        finally:
            self.waiting.discard(self)
        if self.dropped:
            raise ConnectionAbortedError("dropped to make room for a new connection")
        return count


class DeadlineHandler(BaseHTTPRequestHandler):
    """A request handler whose request reads keep the server's deadline (see the module docstring)."""

    server: BoundedHTTPServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain socket file, replaced by one that keeps the deadline
        self.reader = RequestReader(self.connection, self.server.waiting)
        self.rfile = io.BufferedReader(self.reader)

    def handle_one_request(self) -> None:
        self.reader.deadline = time.monotonic() + self.server.request_timeout
        super().handle_one_request()  # which closes the connection on a TimeoutError

    def end_headers(self) -> None:
        self.connection.settimeout(self.server.request_timeout)  # the answer's own time, not what reading left
        super().end_headers()


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `max_connections` threads and a deadline for each request."""

    daemon_threads = True
    request_queue_size = 1024  # the listen backlog: connections waiting for a thread wait here, in the kernel
    max_connections = 64
    request_timeout = 10.0

    def __init__(self, *args, **kwargs):
        self.waiting = Waiting()
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            # Every thread is taken: drop the connection that has waited longest for its request (its thread
            # ends at once); if none is waiting, all are being answered and one finishes soon.
            self.waiting.drop_oldest()
            self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except Exception:  # no thread started: the slot is free again
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client left, was dropped, or let its time run out: nothing to report
        super().handle_error(request, client_address)
