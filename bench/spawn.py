"""Start+join cost of a no-op child with multiprocessing (fork start method).
usage: python3 spawn.py seq|conc N REPS  -> prints the best microseconds per child"""
import multiprocessing as mp
import sys
import time


def noop():
    pass


def main():
    mode, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ctx = mp.get_context("fork")
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        if mode == "conc":
            procs = [ctx.Process(target=noop) for _ in range(n)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
        else:
            for _ in range(n):
                p = ctx.Process(target=noop)
                p.start()
                p.join()
        best = min(best, time.perf_counter() - t)
    print(f"{best * 1e6 / n:.2f}")


if __name__ == "__main__":
    main()
