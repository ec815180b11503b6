"""Start+join cost of a no-op child with multiprocessing (fork start method).
usage: python3 spawn.py seq|conc N REPS [LIVE]  -> prints the best microseconds per child
LIVE other children stay blocked on an Event while the loop runs."""
import multiprocessing as mp
import sys
import time


def noop():
    pass


def main():
    mode, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    live = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    ctx = mp.get_context("fork")
    release = ctx.Event()
    idle = [ctx.Process(target=release.wait) for _ in range(live)]
    for p in idle:
        p.start()
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
    release.set()
    for p in idle:
        p.join()
    print(f"{best * 1e6 / n:.2f}")


if __name__ == "__main__":
    main()
