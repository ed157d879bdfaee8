"""Burns ~20 ms of CPU per call so that evaluation has a realistic, fixed cost."""

import time


# EVOLVE-BLOCK-START
def params():
    return [0.5, 1.5, 2.5]
# EVOLVE-BLOCK-END


def run(cpu_s=0.02):
    end = time.process_time() + cpu_s
    spins = 0
    while time.process_time() < end:
        spins += 1
    return {"params": params(), "spins": spins}
