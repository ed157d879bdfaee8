"""TSP construction heuristic: build a tour one city at a time with an evolved selection rule.

``run`` generates the 16 seeded random instances (50 cities in the unit square), builds one tour
per instance with the skeleton below, starting and ending at city 0, and returns the tours. The
starting rule is nearest neighbour (with a zero weight on the distance back to city 0).
"""

import numpy as np


# EVOLVE-BLOCK-START
def select_next_node(current_node, destination_node, unvisited_nodes, distance_matrix):
    """The next city to visit from `current_node`, chosen among `unvisited_nodes` (a numpy array).

    `destination_node` is where the tour must end (city 0); `distance_matrix[i, j]` is the
    Euclidean distance between cities i and j.
    """
    distances = distance_matrix[current_node, unvisited_nodes]
    to_destination = distance_matrix[unvisited_nodes, destination_node]
    destination_weight = 0.0  # > 0 prefers cities close to the destination
    return unvisited_nodes[np.argmin(distances + destination_weight * to_destination)]
# EVOLVE-BLOCK-END


def build_tour(points):
    """Start at city 0 and repeatedly move to the city `select_next_node` picks."""
    distance_matrix = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=-1))
    tour = [0]
    unvisited = np.arange(1, len(points))
    while len(unvisited):
        nxt = int(select_next_node(tour[-1], 0, unvisited, distance_matrix))
        if nxt not in unvisited:
            raise ValueError(f"select_next_node chose {nxt}, which is not an unvisited city")
        tour.append(nxt)
        unvisited = unvisited[unvisited != nxt]
    return tour


def instances(seed, count, size):
    """The seeded instances (the LLM4AD/EoH generator): uniform cities in [0, 1]^2."""
    rng = np.random.RandomState(seed)
    return [rng.rand(size, 2) for _ in range(count)]


def run(seed, count, size):
    """The entry point: one tour (a permutation of the cities, starting at 0) per instance."""
    return [build_tour(points) for points in instances(seed, count, size)]
