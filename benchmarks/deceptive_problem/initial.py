"""Four constants for a deceptive trap function (see problem.yaml)."""


# EVOLVE-BLOCK-START
def params():
    return [1.0, 1.0, 1.0, 1.0]
# EVOLVE-BLOCK-END


def run():
    return {"params": params()}
