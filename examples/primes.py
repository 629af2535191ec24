"""A small example for `hintwise complete`: ask for the missing line at examples/primes.py:15:13."""

import math


def is_prime(n: int) -> bool:
    """Return True when n is a prime number."""
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    limit = int(math.sqrt(n))
    for divisor in range(3, limit + 1, 2):
        if n % divisor == 0:
            
    return True


def primes_below(limit: int) -> list[int]:
    """All prime numbers smaller than limit, in increasing order."""
    return [n for n in range(limit) if is_prime(n)]
