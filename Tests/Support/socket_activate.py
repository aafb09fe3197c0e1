#!/usr/bin/env python3
"""Stand-in for systemd's socket activation, for tests: binds a Unix socket, then runs the
command with the socket as fd 3 and LISTEN_PID/LISTEN_FDS set, as systemd does. When the
command exits it is started again (Restart=always) while this process keeps the socket, so
connections made in between wait in the socket's backlog. SIGTERM stops the command and exits.

usage: socket_activate.py [--restart-delay SECONDS] SOCKET_PATH COMMAND [ARGS...]
"""
import os
import signal
import socket
import sys
import time


def main() -> int:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    args = sys.argv[1:]
    delay = 0.0
    if args[0] == "--restart-delay":
        delay, args = float(args[1]), args[2:]
    path, command = args[0], args[1:]
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    stopping = False
    child = 0

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        if child:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while not stopping:
        started = time.monotonic()
        child = os.fork()
        if child == 0:
            if listener.fileno() != 3:
                os.dup2(listener.fileno(), 3)
            os.set_inheritable(3, True)
            env = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="jobstored")
            os.execvpe(command[0], command, env)
        print(f"socket_activate: started pid {child}", file=sys.stderr, flush=True)
        while True:
            try:
                _, raw = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        status = os.waitstatus_to_exitcode(raw)
        child = 0
        print(f"socket_activate: pid exited with {status}", file=sys.stderr, flush=True)
        if status != 0 and time.monotonic() - started < 1:
            break
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.01)
    listener.close()
    os.unlink(path)
    return status


if __name__ == "__main__":
    sys.exit(main())
