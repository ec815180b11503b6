# Starts N idle multiprocessing children (fork), prints their pids, waits for a line on stdin.
import multiprocessing as mp, sys, time
def idle():
    time.sleep(3600)
if __name__ == "__main__":
    mp.set_start_method("fork")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    ps = [mp.Process(target=idle, daemon=True) for _ in range(n)]
    for p in ps: p.start()
    for p in ps: print(p.pid)
    print("ready", flush=True)
    sys.stdin.readline()
