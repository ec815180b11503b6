"""Python side of bench/manager.sh: the same figures with multiprocessing.Manager()
(fork start method).

    python3 bench/manager_bench.py CALLS STARTS

Prints one line per figure: `name value unit`.
"""
import multiprocessing as mp
import sys
import time


def update(d, w, ready, calls):
    d[w] = 0
    ready.wait()
    for i in range(calls):
        d[w] = i


def main():
    calls, starts = int(sys.argv[1]), int(sys.argv[2])
    m = mp.Manager()
    d = m.dict()

    t = time.perf_counter()
    for i in range(calls):
        d["k"] = i
    print(f"dict_set {calls / (time.perf_counter() - t)} calls/s")

    t = time.perf_counter()
    for _ in range(calls):
        d["k"]
    print(f"dict_get {calls / (time.perf_counter() - t)} calls/s")

    ready = mp.Barrier(5)
    workers = [mp.Process(target=update, args=(d, w, ready, calls)) for w in range(4)]
    for p in workers:
        p.start()
    ready.wait()
    t = time.perf_counter()
    for p in workers:
        p.join()
    print(f"dict_set_4 {4 * calls / (time.perf_counter() - t)} calls/s")

    v = m.Value("i", 0)
    t = time.perf_counter()
    for i in range(calls):
        v.value = i
    print(f"value_set {calls / (time.perf_counter() - t)} calls/s")
    m.shutdown()

    t = time.perf_counter()
    for _ in range(starts):
        m = mp.Manager()
        m.dict()
        m.shutdown()
    print(f"start_stop {starts / (time.perf_counter() - t)} managers/s")


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
