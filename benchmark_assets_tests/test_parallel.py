"""run_all under interrupts: the first lets running work finish, the second stops it, and what the
stop ended is never kept as a result."""
import signal
import threading
import time

import pytest

from benchmark_assets.parallel import run_all


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt here even when the tests were started in the background
    (a shell starts a background job with SIGINT ignored, and Python then keeps it ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_second_interrupt_keeps_only_what_finished_before_the_stop():
    release, messages, kept = threading.Event(), [], []
    started, returned = threading.Semaphore(0), threading.Semaphore(0)

    def work(key):
        if key == "quick":
            return "quick: ok"
        started.release()
        release.wait(60)  # runs until stopped
        returned.release()
        return f"{key}: stopped"

    def stop():  # like stopping trial processes: the stopped work comes back at once
        release.set()
        for _ in range(2):
            assert returned.acquire(timeout=30)

    main = threading.main_thread().ident

    def interrupt_twice():
        for _ in range(2):
            assert started.acquire(timeout=30)
        while not kept:
            time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGINT)
        while not any(m.startswith("interrupted: no new trials start") for m in messages):
            time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_twice, daemon=True)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        run_all(["quick", "slow 1", "slow 2"], work, workers=3, on_result=kept.append, stop=stop,
                notify=messages.append)
    interrupter.join(timeout=30)
    assert kept == ["quick: ok"]  # the two the stop ended are not results
    assert messages[-1] == "stopped the running trials; the 1 finished ones are kept"
