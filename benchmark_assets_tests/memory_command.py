"""A command for the acceptance tests: holds --hold MiB while a child it starts holds --child MiB,
then prints its metrics."""
import argparse
import json
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--hold", type=int, default=0)
parser.add_argument("--child", type=int, default=0)
parser.add_argument("--seconds", type=float, default=0.5)
args = parser.parse_args()
held = bytearray(args.hold * 2**20)  # bytearray zero-fills: the pages are resident
if args.child:
    subprocess.run([sys.executable, "-c", f"b = bytearray({args.child} * 2**20); import time; "
                    f"time.sleep({args.seconds})"], check=True)
else:
    time.sleep(args.seconds)
print(json.dumps({"items": 3}))
