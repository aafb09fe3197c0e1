"""Empty-call round trip from Python (jobstore.Client.ping). usage: ping.py SOCKET CALLS -> "python p50 p99" µs."""
import sys
import time

import jobstore
from jobstore import pb

client = jobstore.Client(sys.argv[1])
calls = int(sys.argv[2])
empty = pb.Empty()
for _ in range(1000):
    client.ping(empty)
samples = []
for _ in range(calls):
    t = time.perf_counter()
    client.ping(empty)
    samples.append((time.perf_counter() - t) * 1e6)
samples.sort()
print(f"python {samples[len(samples) // 2]:.1f} {samples[int(len(samples) * 0.99)]:.1f}")
