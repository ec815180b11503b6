"""Python side of bench/pool.sh: the same figures with multiprocessing.Pool (fork).

    python3 bench/pool_bench.py TASKS

Prints one line per figure: `name value unit`.
"""
import multiprocessing as mp
import sys
import time


def square(x):
    return x * x


def main():
    n = int(sys.argv[1])
    mp.set_start_method("fork")
    items = list(range(n))

    t = time.perf_counter()
    pool = mp.Pool()
    squares = pool.map(square, items)
    pool.close()
    pool.join()
    whole = time.perf_counter() - t
    assert squares[-1] == (n - 1) * (n - 1)
    print(f"pool_whole {n / whole} tasks/s")

    pool = mp.Pool()
    pool.map(square, [1, 2, 3, 4])
    t = time.perf_counter()
    pool.map(square, items)
    secs = time.perf_counter() - t
    print(f"pool_map {n / secs} tasks/s")

    m = n // 10
    t = time.perf_counter()
    rs = [pool.apply_async(square, (i,)) for i in range(m)]
    for r in rs:
        r.get()
    secs = time.perf_counter() - t
    print(f"pool_apply_async {m / secs} tasks/s")
    pool.terminate()
    pool.join()


if __name__ == "__main__":
    main()
