"""One node's update of a file is seen by another node's next read (issue 16), through Toil's
job-store API as its workers call it (the adapter, DaemonJobStore), each node through its own
daemon and node cache. cluster_test.py runs the steps on different nodes:

  node1 init, write v1 · node2 read (its cache now holds v1) · node3 update to v2 ·
  node2 read: v2, by read_file and by stream, while the copy it read before keeps v1

usage: cross_node.py STEP LOCATOR STATE_DIR   (STEP: init|write|read-v1|update|read-v2|destroy)
Bodies are 8 MiB (worth caching; multipart). Exits non-zero with a message on a wrong byte."""
import hashlib
import json
import os
import sys

from toil.common import Config

from jobstore.toil import DaemonJobStore

MiB = 1 << 20


def body(version: str) -> bytes:
    return hashlib.shake_256(f"cross-node {version}".encode()).digest(8 * MiB)


def main():
    step, locator, state_dir = sys.argv[1:4]
    state_path = os.path.join(state_dir, "state.json")
    store = DaemonJobStore(locator)
    if step == "init":
        config = Config()
        config.workflowID = None
        store.initialize(config)
        return
    store.resume()
    state = json.load(open(state_path)) if os.path.exists(state_path) else {}
    if step == "write":
        path = os.path.join(state_dir, "v1.bin")
        with open(path, "wb") as f:
            f.write(body("v1"))
        state["file_id"] = str(store.write_file(path))
    elif step == "update":
        path = os.path.join(state_dir, "v2.bin")
        with open(path, "wb") as f:
            f.write(body("v2"))
        store.update_file(state["file_id"], path)
    elif step in ("read-v1", "read-v2"):
        version = step[len("read-"):]
        target = os.path.join(state_dir, f"{os.uname().nodename}-{version}.bin")
        store.read_file(state["file_id"], target)
        with open(target, "rb") as f:
            if f.read() != body(version):
                sys.exit(f"{os.uname().nodename}: read_file did not give {version}")
        with store.read_file_stream(state["file_id"]) as stream:
            if stream.read() != body(version):
                sys.exit(f"{os.uname().nodename}: read_file_stream did not give {version}")
        if version == "v2":
            earlier = os.path.join(state_dir, f"{os.uname().nodename}-v1.bin")
            with open(earlier, "rb") as f:
                if f.read() != body("v1"):
                    sys.exit(f"{os.uname().nodename}: the copy read before the update changed under its reader")
    elif step == "destroy":
        store.destroy()
    else:
        sys.exit(f"unknown step {step}")
    with open(state_path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(state_path + ".tmp", state_path)


if __name__ == "__main__":
    main()
