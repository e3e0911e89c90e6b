#!/usr/bin/env python3
"""Prints a TCP port free on this host and outside the kernel's ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range), for a coordinator that starts a while later.

A port the kernel hands out for bind(0) is ephemeral: between choosing it and the coordinator's
bind, any process's outgoing connection or bind(0) (srun's and mpirun's I/O listeners, for one)
may take it, and workers then reach that process instead (a handshake that never starts). A port
below the range is taken only by a process that asks for it by number.

    python3 cluster/free-port.py
"""
import random
import socket


def ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def main():
    high = min(ephemeral_low(), 65536) - 1
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randint(10000, high)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            continue
        finally:
            s.close()
        print(port)
        return
    raise SystemExit("free-port: no free port found below the ephemeral range")


if __name__ == "__main__":
    main()
