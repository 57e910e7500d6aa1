"""The process FDS runs in: how many threads its native thread pools get (threads.py)."""
