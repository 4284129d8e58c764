"""A tiny seeded 'training run' for comparison-study tests: a loss curve, two scalars, and a crash on request."""
import argparse
import json
import random
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--shift", type=float, required=True)
parser.add_argument("--crash-seed", type=int, default=-1)
parser.add_argument("--out", required=True)
args = parser.parse_args()
if args.seed == args.crash_seed:
    print("boom: this seed crashes on purpose", file=sys.stderr)
    sys.exit(3)
rng = random.Random(args.seed)
level = rng.gauss(0.0, 0.05)  # shared by both arms on a seed: what pairing removes
steps = list(range(0, 101, 10))
loss = [1.0 / (1.0 + 0.05 * t) + level + args.shift + rng.gauss(0.0, 0.002) for t in steps]
with open(args.out, "w") as handle:
    json.dump({"loss": {"steps": steps, "values": loss}, "final_loss": loss[-1], "steps_run": len(steps)}, handle)
