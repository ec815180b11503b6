"""N multiprocessing children blocked in Queue.get() for HOLD seconds (see bench/blocked.sh).
usage: python3 blocked_queue.py N HOLD"""
import multiprocessing as mp
import sys
import time

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    hold = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    ps = [ctx.Process(target=q.get) for _ in range(n)]
    for p in ps:
        p.start()
    time.sleep(hold)
    for i in range(n):
        q.put(i)
    for p in ps:
        p.join()
