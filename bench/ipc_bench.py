"""Python side of bench/ipc.sh: the same figures with multiprocessing (fork start method).

    python3 bench/ipc_bench.py SMALL BIG PAIRS

Prints one line per figure: `name value unit`.
"""
import multiprocessing as mp
import sys
import time


def produce(q, n, value):
    for i in range(n):
        q.put(i if value is None else value)


def queue_rate(n, value):
    q = mp.Queue()
    t = time.perf_counter()
    p = mp.Process(target=produce, args=(q, n, value))
    p.start()
    for _ in range(n):
        q.get()
    secs = time.perf_counter() - t
    p.join()
    return n / secs


def contend(lock, barrier, pairs, use_with):
    barrier.wait()
    if use_with:
        for _ in range(pairs):
            with lock:
                pass
    else:
        for _ in range(pairs):
            lock.acquire()
            lock.release()


def lock_rate(pairs, use_with):
    lock = mp.Lock()
    barrier = mp.Barrier(3)
    workers = [mp.Process(target=contend, args=(lock, barrier, pairs, use_with)) for _ in range(2)]
    for w in workers:
        w.start()
    barrier.wait()
    t = time.perf_counter()
    for w in workers:
        w.join()
    return 2 * pairs / (time.perf_counter() - t)


def native_calls(n):
    e = mp.Event()
    t = time.perf_counter()
    for _ in range(n):
        e.is_set()
        e.is_set()
    return n / (time.perf_counter() - t)


def main():
    small, big, pairs = (int(a) for a in sys.argv[1:4])
    mp.set_start_method("fork")
    print(f"queue_small {queue_rate(small, None)} msg/s")
    print(f"queue_1mib {queue_rate(big, b'a' * 1048576)} msg/s")
    print(f"lock_methods {lock_rate(pairs, False)} pairs/s")
    print(f"lock_with {lock_rate(pairs, True)} pairs/s")
    print(f"two_native_calls {native_calls(pairs)} iterations/s")


if __name__ == "__main__":
    main()
