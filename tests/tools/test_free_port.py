"""tests/tools/test_free_port.py: gwtest.free_port never picks a port that
fetch() refuses.

A CI run drew 10080 for the HTTP transport; the browser test's fetch() to
it failed with "bad port" (the Fetch standard and Chromium block it). Here
the random draw is made to offer 10080 first: free_port must pass it over
and return the next port offered."""

import random
import socket

import gwtest


class Draws(random.Random):
    """Offers 10080, then a port found free now (bind 0), then fails."""

    def __init__(self, *a, **k):
        super().__init__()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.free = s.getsockname()[1]
        s.close()
        self.offers = [10080, self.free]

    def randint(self, a, b):
        return self.offers.pop(0)


def test_bad_port_passed_over():
    """fetch() to 10080 fails in Node, so the harness must never choose it."""
    real = random.SystemRandom
    real_low = gwtest._ephemeral_low
    want = None
    gwtest._ephemeral_low = lambda: 65536  # the bind(0) port is in range
    try:
        draws = Draws()
        want = draws.free
        random.SystemRandom = lambda: draws
        port = gwtest.free_port()
    finally:
        random.SystemRandom = real
        gwtest._ephemeral_low = real_low
    assert port != 10080, "free_port chose 10080, a port fetch() refuses"
    assert port == want, "free_port chose %d, not the next offer %d" % (port, want)


if __name__ == "__main__":
    gwtest.run_tests([test_bad_port_passed_over])
