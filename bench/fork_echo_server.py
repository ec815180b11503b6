"""Scenario 8 as the tutorial writes it: Python's multiprocessing, one Process per
connection, never joined. The baseline for bench/echo.sh.

    python3 bench/fork_echo_server.py [PORT [HOST]]    prints "listening on HOST:PORT"

Changes from the tutorial: the port and host come from the command line, the marker line,
and listen(128) instead of 5 (as in the procscript and C servers, so that a burst of
connections is not dropped).
"""
import socket
import sys
from multiprocessing import Process


def task(conn, addr):
    while True:
        try:
            msg = conn.recv(1024)
            if not msg:
                break
            conn.send(msg.upper())
        except ConnectionResetError:
            break


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6087
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(128)
    print(f"listening on {host}:{server.getsockname()[1]}", flush=True)
    while True:
        conn, addr = server.accept()
        p = Process(target=task, args=(conn, addr))
        p.start()
