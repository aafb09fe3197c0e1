"""Peak bytes on each node's scratch disk of tools/cluster while a workflow runs, for
cluster_test.py and bench/python/cluster.py: the daemon's cache, Toil's work directory, and the
two together with hard links counted once (what the disk really holds), sampled every second."""
import os
import subprocess
import threading


class ScratchDiskPeak(threading.Thread):
    def __init__(self, state_dir, nodes):
        super().__init__(daemon=True)
        self.state_dir = state_dir
        self.peak = {k: {"cache": 0, "toil": 0, "disk": 0} for k in range(1, nodes + 1)}
        self.stopping = threading.Event()

    @staticmethod
    def du(*paths):
        """Bytes under the paths, each inode once (du -c over all of them)."""
        existing = [p for p in paths if os.path.exists(p)]
        if not existing:
            return 0
        out = subprocess.run(["du", "-sbc", *existing], text=True, capture_output=True).stdout.splitlines()
        return int(out[-1].split()[0]) if out else 0

    def run(self):
        while not self.stopping.wait(1.0):
            for k in self.peak:
                scratch = os.path.join(self.state_dir, f"node{k}", "scratch")
                cache, toil = os.path.join(scratch, "jobstored-cache"), os.path.join(scratch, "toil")
                figures = {"cache": self.du(cache), "toil": self.du(toil), "disk": self.du(cache, toil)}
                for what, value in figures.items():
                    self.peak[k][what] = max(self.peak[k][what], value)

    def stop(self):
        """Stops sampling; returns {node: {"cache", "toil", "disk"}: peak bytes}."""
        self.stopping.set()
        self.join()
        return self.peak
